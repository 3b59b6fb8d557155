"""Where a webhook may be sent: URL rules, and a connection that checks the address it really connects to.

An admin types the URL, but the request leaves from inside the network: without care, a subscription to
``http://169.254.169.254/`` or ``http://10.0.0.5:5432/`` would let an admin account probe internal systems (SSRF).
So the scheme must be https (http only when ``allow_http``), and every address the host name resolves to must be
public (``ip.is_global``) unless ``allow_private_targets`` is set. The check is made when the subscription is saved
*and* at each connection, on the very address connected to (a name that later resolves elsewhere — DNS rebinding —
is refused then). Redirects are never followed.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from comptoir_common.errors import InvalidInput

MAX_URL_LENGTH = 2000


class TargetRefused(Exception):
    """The target's address is not allowed (a private address without the setting): a permanent failure."""


@dataclass(frozen=True)
class TargetRules:
    allow_http: bool = False
    allow_private: bool = False


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return False
    return ip.is_global or allow_private


def check_url(url: str, rules: TargetRules) -> str:
    """The URL, stripped, if it may be a webhook target; :class:`InvalidInput` (French) otherwise."""
    url = (url or "").strip()
    if not url:
        raise InvalidInput("L'adresse (URL) est obligatoire.")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput("L'adresse (URL) est trop longue.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("L'adresse (URL) n'est pas valide.") from None
    if parts.scheme not in ("https", "http"):
        raise InvalidInput("L'adresse doit commencer par https://.")
    if parts.scheme == "http" and not rules.allow_http:
        raise InvalidInput("L'adresse doit être en https:// (le http n'est permis qu'en développement).")
    if not parts.hostname:
        raise InvalidInput("L'adresse (URL) n'indique pas de serveur.")
    if parts.username or parts.password:
        raise InvalidInput(
            "L'adresse ne doit pas contenir d'identifiants ; la signature authentifie les envois."
        )
    if parts.fragment:
        raise InvalidInput("L'adresse ne doit pas contenir de fragment (#…).")
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            # Not resolvable now (not yet published?): accepted; each delivery checks again and retries.
            infos = []
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    refused = sorted({str(ip) for ip in addresses if not address_allowed(ip, rules.allow_private)})
    if refused:
        raise InvalidInput(
            f"Adresse interne refusée ({', '.join(refused)}) : seules les adresses publiques sont permises."
        )
    return url


def _connect(host: str, port: int, timeout: float, allow_private: bool) -> socket.socket:
    refused: list[str] = []
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        ip = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if not address_allowed(ip, allow_private):
            refused.append(str(ip))
            continue
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    if last_error is not None:
        raise last_error
    raise TargetRefused(f"adresse non autorisée : {', '.join(refused) or host}")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    allow_private = False

    def connect(self) -> None:
        self.sock = _connect(self.host, self.port, self.timeout, self.allow_private)


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    allow_private = False

    def connect(self) -> None:
        sock = _connect(self.host, self.port, self.timeout, self.allow_private)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    retry_after: float | None


# Only the beginning of an answer is read and kept (the log shows it; a receiver has nothing long to say).
MAX_RESPONSE_BYTES = 8192


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, rules: TargetRules) -> Response:
    """POST ``body`` to ``url`` (no redirect followed). Raises OSError / HTTPException / TargetRefused."""
    parts = urlsplit(url)
    connection_class = _GuardedHTTPSConnection if parts.scheme == "https" else _GuardedHTTPConnection
    if parts.scheme == "http" and not rules.allow_http:
        raise TargetRefused("http:// non autorisé")
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    connection.allow_private = rules.allow_private
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read(MAX_RESPONSE_BYTES)
        return Response(
            status=response.status,
            body=content.decode("utf-8", errors="replace"),
            retry_after=_retry_after(response.getheader("Retry-After")),
        )
    finally:
        connection.close()


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: ignored, our own backoff applies
