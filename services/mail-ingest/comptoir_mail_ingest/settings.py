"""Settings of the mail-ingest service (``MAIL_INGEST_*`` plus the common ones).

Mailboxes are a JSON list in ``MAIL_INGEST_MAILBOXES``; each has a ``name`` (stable: it is part of the
idempotency key), a ``url`` and the ``address`` mail is sent to::

    [{"name": "support", "url": "imaps://support%40example.fr:secret@imap.example.fr/INBOX",
      "address": "support@example.fr", "processed_folder": "Traités", "poll_seconds": 30},
     {"name": "local", "url": "maildir:///var/lib/comptoir/maildir", "address": "support@example.fr"}]

Without it, one Maildir under the data directory (``var/maildir``) is read every 2 s: drop a ``.eml`` file in
``var/maildir/new`` and a ticket appears.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from comptoir_common.settings import ServiceSettings
from pydantic import BaseModel, field_validator
from pydantic_settings import SettingsConfigDict


class MailboxConfig(BaseModel):
    name: str
    url: str
    address: str = ""
    # IMAP: after the commit, move the mail to this folder; without it, flag it with the $Comptoir keyword.
    processed_folder: str | None = None
    poll_seconds: float | None = None
    # IMAP over TLS with a private CA (a PEM file); the system's trust store otherwise.
    ca_file: str | None = None

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.lower()
        if scheme not in ("maildir", "imap", "imaps", "imap+starttls"):
            raise ValueError(
                f"unsupported mailbox URL scheme {scheme!r} (maildir, imap, imaps, imap+starttls)"
            )
        return value

    @property
    def kind(self) -> str:
        return "maildir" if self.url.lower().startswith("maildir:") else "imap"


class MailIngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MAIL_INGEST_", extra="ignore")

    service_name: str = "mail_ingest"
    mailboxes: str | None = None
    imap_poll_seconds: float = 30.0
    maildir_poll_seconds: float = 2.0
    max_message_bytes: int = 30 * 1024 * 1024
    max_attachment_bytes: int = 20 * 1024 * 1024
    # A reply to a closed ticket: "reopen" it, or open a "new_ticket" linked to it.
    closed_ticket_policy: str = "reopen"
    batch_size: int = 100
    imap_timeout: float = 30.0

    def mailbox_list(self) -> list[MailboxConfig]:
        if self.mailboxes:
            items = [MailboxConfig(**item) for item in json.loads(self.mailboxes)]
        else:
            maildir = (self.data_dir / "maildir").resolve()
            items = [MailboxConfig(name="support", url=f"maildir://{maildir}")]
        for item in items:
            if not item.address:
                item.address = f"support@{self.mail_domain}"
            if item.poll_seconds is None:
                item.poll_seconds = (
                    self.maildir_poll_seconds if item.kind == "maildir" else self.imap_poll_seconds
                )
        names = [item.name for item in items]
        if len(set(names)) != len(names):
            raise ValueError("mailbox names must be unique")
        return items

    def nameko_config(self) -> dict:
        return super().nameko_config() | {
            "MAILBOXES": [item.model_dump() for item in self.mailbox_list()],
            "MAIL_DOMAIN": self.mail_domain,
            "THREAD_SECRET": self.resolved_secret_key(),
            "MAX_MESSAGE_BYTES": self.max_message_bytes,
            "MAX_ATTACHMENT_BYTES": self.max_attachment_bytes,
            "CLOSED_TICKET_POLICY": self.closed_ticket_policy,
            "BATCH_SIZE": self.batch_size,
            "IMAP_TIMEOUT": self.imap_timeout,
        }
