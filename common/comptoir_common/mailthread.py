"""Verifiable references that tie a mail to a ticket (see ``docs/email.md``).

Every mail the notifier sends about a ticket carries a *token*: the ticket id and an HMAC of it, keyed by a secret
derived from ``COMPTOIR_SECRET_KEY``. The token appears in three places, in order of trust when a reply comes back:

1. the Message-ID (``<t.<token>.<unique>@<mail domain>>``), which mail programs copy into ``In-Reply-To`` and
   ``References``;
2. the Reply-To plus-address (``support+<token>@<domain>``) and a marker in the body (``[ref:<token>]``), which
   survive relays that rewrite Message-IDs;
3. (not a token) the ``[#1234]`` tag in the subject, which the tickets service accepts only from someone who may
   write on that ticket.

A token cannot be forged without the secret, so a stranger cannot inject a message into someone else's ticket by
making up a reference.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid

TOKEN_MAC_BYTES = 8
# uuid (16 bytes) + MAC (8 bytes) = 24 bytes = 39 base32 characters without padding, lower-case.
_TOKEN_RE = r"[a-z2-7]{39}"
MESSAGE_ID_RE = re.compile(rf"<?t\.({_TOKEN_RE})\.[A-Za-z0-9._-]+@([^>\s]+)>?")
BODY_MARKER_RE = re.compile(rf"\[ref:({_TOKEN_RE})\]", re.IGNORECASE)
SUBJECT_TAG_RE = re.compile(r"\[#(\d{1,12})\]")
LOOP_HEADER = "X-Comptoir-Loop"


def thread_key(secret: str) -> bytes:
    """The HMAC key of mail tokens, derived so that it differs from the key of sessions and API tokens."""
    return hmac.new(secret.encode(), b"comptoir-mail-thread-v1", hashlib.sha256).digest()


def make_token(key: bytes, ticket_id: str) -> str:
    raw = uuid.UUID(ticket_id).bytes
    mac = hmac.new(key, raw, hashlib.sha256).digest()[:TOKEN_MAC_BYTES]
    return base64.b32encode(raw + mac).decode().rstrip("=").lower()


def verify_token(key: bytes, token: str) -> str | None:
    """The ticket id a token stands for, or None if it was not made with ``key``."""
    try:
        raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    except (ValueError, TypeError):
        return None
    if len(raw) != 16 + TOKEN_MAC_BYTES:
        return None
    ticket_bytes, mac = raw[:16], raw[16:]
    expected = hmac.new(key, ticket_bytes, hashlib.sha256).digest()[:TOKEN_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        return None
    return str(uuid.UUID(bytes=ticket_bytes))


def message_id(key: bytes, ticket_id: str, unique: str, domain: str) -> str:
    return f"<t.{make_token(key, ticket_id)}.{unique}@{domain}>"


def thread_root_id(ticket_id: str, domain: str) -> str:
    """The first id of every ticket conversation's References (a stable root all our mails point to)."""
    return f"<ticket.{ticket_id}@{domain}>"


def plus_address(address: str, token: str) -> str:
    """``support@x`` → ``support+<token>@x``."""
    local, _, domain = address.rpartition("@")
    return f"{local}+{token}@{domain}"


def body_marker(token: str) -> str:
    return f"[ref:{token}]"


def split_message_ids(value: str | None) -> list[str]:
    """Every ``<id>`` in an ``In-Reply-To`` or ``References`` header, in order, without brackets."""
    if not value:
        return []
    found = re.findall(r"<([^<>\s]+)>", value)
    if not found:
        found = [part.strip("<>") for part in value.split() if "@" in part]
    return found


def ticket_from_message_id(key: bytes, value: str, domain: str | None = None) -> str | None:
    match = MESSAGE_ID_RE.fullmatch(value.strip()) if value else None
    if not match:
        return None
    if domain and match.group(2).lower() != domain.lower():
        return None
    return verify_token(key, match.group(1))


def is_our_message_id(value: str, domain: str) -> bool:
    """True for ids we make (signed ones and the ticket thread roots): such a mail coming back is our own."""
    value = value.strip().strip("<>")
    return value.lower().endswith("@" + domain.lower()) and (
        value.startswith("t.") or value.startswith("ticket.") or value.startswith("n.")
    )


def tokens_in_addresses(addresses: list[str], support_local_parts: set[str]) -> list[str]:
    """Tokens found in plus-addresses (``support+<token>@…``) whose local part is one of ours."""
    tokens = []
    for address in addresses:
        local = address.rpartition("@")[0].lower()
        base, plus, tag = local.partition("+")
        if plus and base in support_local_parts and re.fullmatch(_TOKEN_RE, tag):
            tokens.append(tag)
    return tokens


def tokens_in_body(text: str) -> list[str]:
    return [token.lower() for token in BODY_MARKER_RE.findall(text or "")]


def subject_numbers(subject: str) -> list[int]:
    return [int(number) for number in SUBJECT_TAG_RE.findall(subject or "")]
