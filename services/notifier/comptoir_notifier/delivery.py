"""Sending queued mail over SMTP, with retries and backoff; a permanent refusal is recorded, never retried."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

from comptoir_common.db import utcnow
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from comptoir_notifier.models import OutgoingMail

log = logging.getLogger(__name__)

MAILS_SENT = Counter("comptoir_mails_sent_total", "Mails accepted by the SMTP server", ["kind"])
MAIL_FAILURES = Counter("comptoir_smtp_failures_total", "SMTP send failures", ["permanence"])

FIRST_RETRY_SECONDS = 15
MAX_RETRY_SECONDS = 3600


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    starttls: bool = False
    timeout: float = 20.0

    @classmethod
    def from_url(cls, url: str, timeout: float = 20.0) -> SmtpConfig:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps", "smtp+starttls"):
            raise ValueError(f"unsupported SMTP URL scheme: {scheme}")
        default_port = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}[scheme]
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or default_port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=scheme == "smtps",
            starttls=scheme == "smtp+starttls",
            timeout=timeout,
        )


class PermanentFailure(Exception):
    """The server refused the mail for good (5xx): retrying would not help."""


def build_message(mail: OutgoingMail, from_address: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Message-ID"] = mail.message_id
    message["Date"] = formatdate(localtime=False, usegmt=True)
    for name, value in (mail.headers or {}).items():
        message[name] = value
    message.set_content(mail.body_text)
    message.add_alternative(mail.body_html, subtype="html")
    return message


class SmtpSender:
    """Sends messages over one SMTP connection, opened on first use and reopened after an error.

    Use it as a context manager for a batch: a connection per mail would cost a TCP and TLS handshake each.
    """

    def __init__(self, config: SmtpConfig):
        self.config = config
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        if config.implicit_tls:
            client = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        if config.starttls:
            client.starttls(context=ssl.create_default_context())
        if config.username:
            client.login(config.username, config.password or "")
        return client

    def send(self, message: EmailMessage) -> None:
        """Hand one message to the server; raise :class:`PermanentFailure` on a 5xx answer."""
        if self._client is None:
            self._client = self._connect()
        try:
            refused = self._client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            self._reset()
            codes = [code for code, _ in exc.recipients.values()]
            if all(code >= 500 for code in codes):
                raise PermanentFailure(str(exc.recipients)) from exc
            raise
        except smtplib.SMTPResponseException as exc:
            self._reset()
            if exc.smtp_code >= 500:
                raise PermanentFailure(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise
        except (OSError, smtplib.SMTPException):
            self.close()
            raise
        if refused:
            raise PermanentFailure(f"recipients refused: {refused}")

    def _reset(self) -> None:
        """After a refused message, start the next one on a clean transaction (or a new connection)."""
        try:
            self._client.rset()
        except (OSError, smtplib.SMTPException):
            self.close()


def claim_next_due(session: Session) -> OutgoingMail | None:
    """The oldest mail due for sending, locked so that another notifier instance skips it."""
    return session.scalar(
        select(OutgoingMail)
        .where(OutgoingMail.status == "pending", OutgoingMail.next_attempt_at <= utcnow())
        .order_by(OutgoingMail.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def deliver(mail: OutgoingMail, sender: SmtpSender, from_address: str, max_attempts: int) -> None:
    """Try to send ``mail`` and record the outcome on it (the caller commits)."""
    mail.attempts += 1
    try:
        sender.send(build_message(mail, from_address))
    except PermanentFailure as exc:
        MAIL_FAILURES.labels("permanent").inc()
        mail.status = "failed"
        mail.last_error = str(exc)[:2000]
        log.warning("mail refused for good", extra={"mail_id": mail.id, "error": mail.last_error})
        return
    except (OSError, smtplib.SMTPException) as exc:
        MAIL_FAILURES.labels("transient").inc()
        mail.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if mail.attempts >= max_attempts:
            mail.status = "failed"
        else:
            delay = min(FIRST_RETRY_SECONDS * 2 ** (mail.attempts - 1), MAX_RETRY_SECONDS)
            mail.next_attempt_at = utcnow() + timedelta(seconds=delay)
        log.warning("mail not sent, will retry", extra={"mail_id": mail.id, "attempts": mail.attempts})
        return
    mail.status = "sent"
    mail.sent_at = utcnow()
    mail.last_error = None
    MAILS_SENT.labels(mail.kind).inc()
