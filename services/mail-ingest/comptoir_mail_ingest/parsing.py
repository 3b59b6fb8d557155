"""From raw bytes to what the pipeline needs: headers, sender, references, bodies, attachments, loop signals.

mail-parser does the MIME work (charsets, RFC 2047 subjects, RFC 2231 file names, inline images); the standard
library reads the few raw headers it needs. Nothing here touches a database: it is pure and safe to replay.
"""

from __future__ import annotations

import base64
import binascii
import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime

import mailparser
import nh3
from comptoir_common import mailthread

# Subject prefixes mail programs add to replies and forwards (English, French, German, Outlook's variants).
_PREFIX_RE = re.compile(
    r"^\s*((re|fw|fwd|tr|aw|wg|rif|sv|vs|antw|réf|ref)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
ALLOWED_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
DAEMON_LOCAL_PARTS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}


class UnparseableMail(Exception):
    """The bytes are not a mail we can read; the message says why (French, shown to admins)."""


@dataclass
class Attachment:
    filename: str
    content_type: str
    payload: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass
class Bounce:
    original_message_id: str | None
    recipient: str | None
    status: str | None
    action: str | None
    diagnostic: str | None

    @property
    def permanent(self) -> bool:
        if self.status:
            return self.status.strip().startswith("5")
        return (self.action or "").lower() == "failed"


@dataclass
class ParsedMail:
    rfc_message_id: str | None
    subject: str
    from_email: str
    from_name: str
    to: list[str]
    cc: list[str]
    recipients: list[str]  # To, Cc, Delivered-To, X-Original-To: where plus-addresses are looked for
    reply_to: str | None
    date: datetime | None
    references: list[str]  # In-Reply-To then References, every id, without brackets
    text: str
    html: str
    attachments: list[Attachment] = field(default_factory=list)
    automatic: str | None = None  # why the mail is automatic: auto_reply, bulk, list, bounce, mailer_daemon
    own_mail: str | None = None  # why it is our own mail coming back
    bounce: Bounce | None = None
    defects: list[str] = field(default_factory=list)


def header_text(value) -> str:
    """A header as text, decoding RFC 2047 words whatever the charset; never raises."""
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (UnicodeDecodeError, LookupError, ValueError, binascii.Error, AssertionError):
        return str(value).encode("utf-8", "replace").decode("utf-8")


def quick_headers(raw: bytes) -> Message:
    """Only the header block (cheap): enough for the idempotency key and the date."""
    return BytesHeaderParser().parsebytes(raw[: 256 * 1024])


def message_key(raw: bytes, headers: Message) -> tuple[str, str | None]:
    """(idempotency key, Message-ID): the Message-ID when there is one, else a hash of the bytes."""
    import hashlib

    rfc_id = normalise_message_id(headers.get("Message-ID"))
    if rfc_id:
        return rfc_id[:400], rfc_id[:400]
    return "sha256:" + hashlib.sha256(raw).hexdigest(), None


def normalise_message_id(value) -> str | None:
    if value is None:
        return None
    ids = mailthread.split_message_ids(header_text(value))
    return ids[0] if ids else None


def mail_date(headers: Message, arrived_at: datetime) -> datetime | None:
    """The Date header in UTC, clamped to the arrival time when in the future; None when missing or unreadable."""
    value = headers.get("Date")
    if not value:
        return None
    try:
        date = parsedate_to_datetime(header_text(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if date is None:
        return None
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    date = date.astimezone(UTC)
    return min(date, arrived_at)


def clean_title(subject: str) -> str:
    return " ".join(_PREFIX_RE.sub("", subject or "").split())


def sanitise_html(value: str) -> str:
    """HTML kept for display, reduced to harmless markup (nh3); ``cid:`` images are kept for inline display."""
    if not value:
        return ""
    return nh3.clean(value, url_schemes=ALLOWED_URL_SCHEMES, link_rel="noopener noreferrer nofollow")


def html_to_text(value: str) -> str:
    if not value:
        return ""
    value = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>|</h\d>", "\n", value)
    text = nh3.clean(value, tags=set())
    text = html_lib.unescape(text)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.splitlines())).strip()


def _addresses(message: Message, *names: str) -> list[tuple[str, str]]:
    values = []
    for name in names:
        values += [header_text(v) for v in message.get_all(name) or []]
    result = []
    for display, address in getaddresses(values):
        address = address.strip().strip("<>").lower()
        if "@" in address:
            result.append((display.strip(), address))
    return result


def classify_automatic(message: Message, from_email: str) -> str | None:
    """Why a mail is automatic (RFC 3834 and the usual vendor headers), or None for a person's mail."""
    auto_submitted = header_text(message.get("Auto-Submitted")).strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto_reply"
    precedence = header_text(message.get("Precedence")).strip().lower()
    if precedence in AUTO_PRECEDENCE:
        return (
            "list" if precedence == "list" else ("bulk" if precedence in ("bulk", "junk") else "auto_reply")
        )
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if message.get(name) is not None:
            return "auto_reply"
    suppress = header_text(message.get("X-Auto-Response-Suppress")).strip().lower()
    if suppress and any(word in suppress for word in ("all", "oof", "autoreply")):
        return "auto_reply"
    if message.get("List-Id") is not None or message.get("List-Unsubscribe") is not None:
        return "list"
    return_path = message.get("Return-Path")
    if return_path is not None and header_text(return_path).strip() in ("<>", ""):
        return "mailer_daemon"
    if from_email.partition("@")[0] in DAEMON_LOCAL_PARTS:
        return "mailer_daemon"
    return None


def _find_bounce(message: Message) -> Bounce | None:
    """The delivery report of a DSN (``multipart/report; report-type=delivery-status``), if this is one."""
    if message.get_content_type() != "multipart/report":
        return None
    if (message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    recipient = status = action = diagnostic = original = None
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            blocks = part.get_payload()
            if isinstance(blocks, list):
                for block in blocks:
                    recipient = recipient or block.get("Final-Recipient") or block.get("Original-Recipient")
                    status = status or block.get("Status")
                    action = action or block.get("Action")
                    diagnostic = diagnostic or block.get("Diagnostic-Code")
            elif isinstance(blocks, str):
                fields = BytesHeaderParser().parsebytes(re.sub(r"\n\s*\n", "\n", blocks).encode())
                recipient = fields.get("Final-Recipient")
                status, action, diagnostic = (
                    fields.get("Status"),
                    fields.get("Action"),
                    fields.get("Diagnostic-Code"),
                )
        elif content_type == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                original = original or normalise_message_id(inner[0].get("Message-ID"))
        elif content_type == "text/rfc822-headers":
            payload = part.get_payload(decode=True) or b""
            original = original or normalise_message_id(
                BytesHeaderParser().parsebytes(payload).get("Message-ID")
            )
    if recipient and ";" in str(recipient):
        recipient = str(recipient).split(";", 1)[1]
    return Bounce(
        original_message_id=original,
        recipient=(str(recipient).strip().lower() if recipient else None),
        status=(str(status).strip() if status else None),
        action=(str(action).strip() if action else None),
        diagnostic=(" ".join(str(diagnostic).split())[:500] if diagnostic else None),
    )


def _attachment_bytes(item: dict) -> bytes:
    payload = item.get("payload") or ""
    if item.get("binary"):
        try:
            return base64.b64decode(payload)
        except (binascii.Error, ValueError):
            return payload.encode("utf-8", "replace")
    charset = item.get("charset") or "utf-8"
    try:
        return payload.encode(charset, "replace")
    except LookupError:
        return payload.encode("utf-8", "replace")


def parse(raw: bytes, *, arrived_at: datetime, mail_domain: str) -> ParsedMail:
    """Parse one mail; raise :class:`UnparseableMail` when the bytes are not a mail."""
    if not raw.strip():
        raise UnparseableMail("Message vide")
    try:
        parsed = mailparser.parse_from_bytes(raw)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a quarantine reason, never a crash
        raise UnparseableMail(f"Message illisible ({type(exc).__name__}: {exc})"[:500]) from exc
    message: Message = parsed.message
    if not message.keys():
        raise UnparseableMail("Aucun en-tête : ce n'est pas un e-mail")
    senders = (
        _addresses(message, "From") or _addresses(message, "Sender") or _addresses(message, "Return-Path")
    )
    if not senders:
        raise UnparseableMail("Expéditeur absent ou illisible (en-tête From)")
    from_name, from_email = senders[0]
    to = [address for _, address in _addresses(message, "To")]
    cc = [address for _, address in _addresses(message, "Cc")]
    recipients = to + cc + [a for _, a in _addresses(message, "Delivered-To", "X-Original-To", "Envelope-To")]
    reply_to = next((address for _, address in _addresses(message, "Reply-To")), None)
    references = mailthread.split_message_ids(header_text(message.get("In-Reply-To")))
    references += [
        ref
        for ref in mailthread.split_message_ids(header_text(message.get("References")))
        if ref not in references
    ]
    try:
        text = "\n".join(part for part in parsed.text_plain if part).strip()
        raw_html = "\n".join(part for part in parsed.text_html if part)
    except Exception as exc:  # noqa: BLE001
        raise UnparseableMail(f"Corps illisible ({type(exc).__name__}: {exc})"[:500]) from exc
    html = sanitise_html(raw_html)
    if not text and raw_html:
        text = html_to_text(raw_html)

    attachments = []
    for item in parsed.attachments or []:
        content_type = (item.get("mail_content_type") or "application/octet-stream").lower()
        content_id = (item.get("content-id") or "").strip().strip("<>") or None
        disposition = (item.get("content-disposition") or "").lower()
        filename = header_text(item.get("filename") or "").strip() or None
        if filename is None:
            extension = content_type.split("/")[-1].split(";")[0] or "bin"
            filename = f"piece-jointe.{'eml' if content_type == 'message/rfc822' else extension}"
        attachments.append(
            Attachment(
                filename=filename.replace("/", "_").replace("\\", "_")[:255],
                content_type=content_type,
                payload=_attachment_bytes(item),
                content_id=content_id,
                inline=bool(content_id) and not disposition.startswith("attachment"),
            )
        )

    bounce = _find_bounce(message)
    automatic = "bounce" if bounce else classify_automatic(message, from_email)
    own_mail = None
    rfc_message_id = normalise_message_id(message.get("Message-ID"))
    if message.get(mailthread.LOOP_HEADER) is not None:
        own_mail = f"En-tête {mailthread.LOOP_HEADER} présent : notre propre e-mail revenu"
    elif rfc_message_id and mailthread.is_our_message_id(rfc_message_id, mail_domain):
        own_mail = f"Message-ID de notre domaine ({rfc_message_id}) : notre propre e-mail revenu"
    if bounce and bounce.original_message_id is None:
        # A DSN without the original's headers: our Message-ID may still be quoted in the text.
        match = mailthread.MESSAGE_ID_RE.search(text)
        if match:
            bounce.original_message_id = match.group(0).strip("<>")

    subject = header_text(parsed.subject if parsed.subject is not None else message.get("Subject")).strip()
    return ParsedMail(
        rfc_message_id=rfc_message_id,
        subject=subject,
        from_email=from_email,
        from_name=from_name,
        to=to,
        cc=cc,
        recipients=recipients,
        reply_to=reply_to,
        date=mail_date(message, arrived_at),
        references=references,
        text=text,
        html=html,
        attachments=attachments,
        automatic=automatic,
        own_mail=own_mail,
        bounce=bounce,
        defects=[str(d) for d in (parsed.defects or [])][:20],
    )
