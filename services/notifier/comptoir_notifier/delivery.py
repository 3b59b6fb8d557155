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


def send_message(config: SmtpConfig, message: EmailMessage) -> None:
    """Hand one message to the SMTP server; raise :class:`PermanentFailure` on a 5xx answer."""
    smtp_class = smtplib.SMTP_SSL if config.implicit_tls else smtplib.SMTP
    kwargs = {"context": ssl.create_default_context()} if config.implicit_tls else {}
    try:
        with smtp_class(config.host, config.port, timeout=config.timeout, **kwargs) as client:
            if config.starttls:
                client.starttls(context=ssl.create_default_context())
            if config.username:
                client.login(config.username, config.password or "")
            refused = client.send_message(message)
            if refused:
                raise PermanentFailure(f"recipients refused: {refused}")
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(code >= 500 for code in codes):
            raise PermanentFailure(str(exc.recipients)) from exc
        raise
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            raise PermanentFailure(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        raise


def claim_next_due(session: Session) -> OutgoingMail | None:
    """The oldest mail due for sending, locked so that another notifier instance skips it."""
    return session.scalar(
        select(OutgoingMail)
        .where(OutgoingMail.status == "pending", OutgoingMail.next_attempt_at <= utcnow())
        .order_by(OutgoingMail.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def deliver(mail: OutgoingMail, config: SmtpConfig, from_address: str, max_attempts: int) -> None:
    """Try to send ``mail`` and record the outcome on it (the caller commits)."""
    mail.attempts += 1
    try:
        send_message(config, build_message(mail, from_address))
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
