"""Where mail comes from: a Maildir (the local default) or an IMAP mailbox (TLS, UIDs).

A source hands out mails with a ``ref``; the pipeline calls :meth:`done` with that ref only after the mail's effect
is committed, so a crash in between leaves the mail on the server to be fetched again (and recognised as already
taken in).
"""

from __future__ import annotations

import imaplib
import os
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

PROCESSED_KEYWORD = "$Comptoir"


@dataclass
class FetchedMail:
    ref: str
    raw: bytes
    arrived_at: datetime


class MailSource(Protocol):
    def fetch(self, limit: int) -> Iterator[FetchedMail]: ...

    def done(self, ref: str) -> None: ...

    def close(self) -> None: ...


class MaildirSource:
    """A Maildir: new mail in ``new/`` (any file name, e.g. ``something.eml``); processed mail moves to ``cur/``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        for sub in ("new", "cur", "tmp"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str) -> MaildirSource:
        parts = urlsplit(url)
        return cls(Path(unquote(parts.netloc + parts.path)))

    def fetch(self, limit: int) -> Iterator[FetchedMail]:
        """The waiting mails, oldest first, one at a time (a large mailbox is never all in memory)."""
        entries = []
        with os.scandir(self.path / "new") as it:
            for entry in it:
                if entry.is_file() and not entry.name.startswith("."):
                    entries.append((entry.stat().st_mtime_ns, entry.name))
        entries.sort()
        for mtime_ns, name in entries[:limit]:
            try:
                raw = (self.path / "new" / name).read_bytes()
            except FileNotFoundError:  # taken by another reader meanwhile
                continue
            yield FetchedMail(ref=name, raw=raw, arrived_at=datetime.fromtimestamp(mtime_ns / 1e9, UTC))

    def done(self, ref: str) -> None:
        source = self.path / "new" / ref
        target_name = ref if ":2," in ref else f"{ref}:2,S"
        try:
            os.replace(source, self.path / "cur" / target_name)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        pass


_INTERNALDATE_RE = re.compile(rb'INTERNALDATE "([^"]+)"')
_UID_RE = re.compile(rb"UID (\d+)")


class ImapSource:
    """An IMAP folder read by UID, with ``BODY.PEEK`` (nothing marked read); processed mail is moved to
    ``processed_folder`` (``UID MOVE``, or copy + delete) or flagged with the ``$Comptoir`` keyword."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        folder: str = "INBOX",
        security: str = "tls",
        processed_folder: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.folder = folder
        self.processed_folder = processed_folder
        context = ssl_context or ssl.create_default_context()
        if security == "tls":
            self.client = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout)
        else:
            self.client = imaplib.IMAP4(host, port, timeout=timeout)
            if security == "starttls":
                self.client.starttls(ssl_context=context)
        self.client.login(username, password)
        if processed_folder:
            self.client.create(self._quote(processed_folder))  # "already exists" is an answer, not an error
        status, _ = self.client.select(self._quote(folder))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot select folder {folder!r}")
        # The capabilities after login (imaplib keeps the ones announced before it, which omit MOVE and UIDPLUS).
        status, data = self.client.capability()
        capabilities = set((data[0] or b"").decode().upper().split()) if status == "OK" and data else set()
        capabilities |= {c.upper() for c in self.client.capabilities}
        self.can_move = "MOVE" in capabilities
        self.uidplus = "UIDPLUS" in capabilities

    @classmethod
    def from_url(
        cls, url: str, processed_folder: str | None = None, timeout: float = 30.0, ssl_context=None
    ) -> ImapSource:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        security = {"imaps": "tls", "imap+starttls": "starttls", "imap": "plain"}[scheme]
        default_port = 993 if security == "tls" else 143
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or default_port,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            folder=folder,
            security=security,
            processed_folder=processed_folder,
            timeout=timeout,
            ssl_context=ssl_context,
        )

    @staticmethod
    def _quote(name: str) -> str:
        name = imap_utf7(name)
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def fetch(self, limit: int) -> Iterator[FetchedMail]:
        criteria = "UNDELETED" if self.processed_folder else f"UNDELETED UNKEYWORD {PROCESSED_KEYWORD}"
        status, data = self.client.uid("SEARCH", None, criteria)
        if status != "OK":
            raise imaplib.IMAP4.error(f"UID SEARCH failed: {data!r}")
        uids = sorted(int(uid) for uid in (data[0] or b"").split())[:limit]
        for start in range(0, len(uids), 50):
            chunk = uids[start : start + 50]
            status, data = self.client.uid("FETCH", ",".join(map(str, chunk)), "(INTERNALDATE BODY.PEEK[])")
            if status != "OK":
                raise imaplib.IMAP4.error(f"UID FETCH failed: {data!r}")
            fetched = []
            for item in data:
                if not isinstance(item, tuple):
                    continue
                meta, raw = item
                uid_match = _UID_RE.search(meta)
                if not uid_match:
                    continue
                date_match = _INTERNALDATE_RE.search(meta)
                arrived = datetime.now(UTC)
                if date_match:
                    parsed = imaplib.Internaldate2tuple(b'INTERNALDATE "' + date_match.group(1) + b'"')
                    if parsed:
                        # Internaldate2tuple gives local time.
                        arrived = datetime.fromtimestamp(time.mktime(parsed), UTC)
                fetched.append(FetchedMail(ref=uid_match.group(1).decode(), raw=raw, arrived_at=arrived))
            fetched.sort(key=lambda mail: int(mail.ref))
            yield from fetched

    def done(self, ref: str) -> None:
        if self.processed_folder:
            target = self._quote(self.processed_folder)
            if self.can_move:
                status, data = self.client.uid("MOVE", ref, target)
                if status != "OK":
                    raise imaplib.IMAP4.error(f"UID MOVE failed: {data!r}")
                return
            status, data = self.client.uid("COPY", ref, target)
            if status != "OK":
                raise imaplib.IMAP4.error(f"UID COPY failed: {data!r}")
            self.client.uid("STORE", ref, "+FLAGS.SILENT", r"(\Deleted)")
            if self.uidplus:
                self.client.uid("EXPUNGE", ref)
            return
        status, data = self.client.uid("STORE", ref, "+FLAGS.SILENT", f"({PROCESSED_KEYWORD})")
        if status != "OK":
            raise imaplib.IMAP4.error(f"UID STORE failed: {data!r}")

    def close(self) -> None:
        try:
            self.client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def imap_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3): ``Traités`` → ``Trait&AOk-s``."""
    import base64

    out, pending = [], []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + encoded.replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def open_source(mailbox: dict, timeout: float = 30.0) -> MailSource:
    url = mailbox["url"]
    if url.lower().startswith("maildir:"):
        return MaildirSource.from_url(url)
    context = ssl.create_default_context(cafile=mailbox["ca_file"]) if mailbox.get("ca_file") else None
    return ImapSource.from_url(
        url, processed_folder=mailbox.get("processed_folder"), timeout=timeout, ssl_context=context
    )
