"""Mails for tests and benchmarks: a builder, and a corpus of the real-world shapes that break helpdesks.

Every corpus case is bytes as a mail program or a mail server would produce them (French charsets, Outlook and
Gmail replies, forwards, inline images, huge attachments, missing or duplicate Message-IDs, DSN bounces,
out-of-office, list mail, malformed MIME).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def new_message_id(domain: str = "client.example") -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def simple(
    *,
    sender: str = "Claire Martin <claire@client.example>",
    to: str = "support@comptoir.local",
    subject: str = "Ligne coupée à Lyon",
    body: str = "Bonjour,\nplus de tonalité depuis ce matin.\nClaire",
    message_id: str | None = "auto",
    in_reply_to: str | None = None,
    references: str | None = None,
    date: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    """A plain UTF-8 mail (quoted-printable), with the headers given."""
    import quopri

    headers = [
        f"From: {_encode_address(sender)}",
        f"To: {to}",
        f"Subject: {_encode_subject(subject)}",
        f"Date: {format_datetime(date or datetime.now(UTC))}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]
    if message_id == "auto":
        message_id = new_message_id()
    if message_id:
        headers.append(f"Message-ID: {message_id}")
    if in_reply_to:
        headers.append(f"In-Reply-To: {in_reply_to}")
    if references:
        headers.append(f"References: {references}")
    for name, value in (extra_headers or {}).items():
        headers.append(f"{name}: {value}")
    encoded = quopri.encodestring(body.encode("utf-8")).decode("ascii")
    return ("\r\n".join(headers) + "\r\n\r\n" + encoded + "\r\n").encode("ascii")


def _encode_address(value: str) -> str:
    from email.utils import formataddr, parseaddr

    try:
        value.encode("ascii")
        return value
    except UnicodeEncodeError:
        return formataddr(parseaddr(value), charset="utf-8")


def _encode_subject(subject: str) -> str:
    from email.header import Header

    try:
        subject.encode("ascii")
        return subject
    except UnicodeEncodeError:
        return Header(subject, "utf-8").encode()


def with_attachment(
    size: int = 2048, *, subject: str = "Facture jointe", sender: str = "c@client.example"
) -> bytes:
    boundary = "b-" + uuid.uuid4().hex
    payload = base64.encodebytes(bytes(range(256)) * (size // 256 + 1))[: size * 4 // 3 + 4].decode()
    return (
        f"From: {sender}\r\nTo: support@comptoir.local\r\nSubject: {subject}\r\n"
        f"Message-ID: {new_message_id()}\r\nDate: {format_datetime(datetime.now(UTC))}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVoir la pièce jointe.\r\n"
        f"--{boundary}\r\nContent-Type: application/pdf\r\n"
        f"Content-Disposition: attachment; filename*=utf-8''facture%20d%C3%A9cembre.pdf\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{payload}\r\n--{boundary}--\r\n"
    ).encode()


def corpus() -> dict[str, bytes]:
    """Our own hard cases, by name."""
    now = datetime.now(UTC)
    date = format_datetime(now)
    cases: dict[str, bytes] = {}
    cases["latin1_accents"] = (
        "From: =?iso-8859-1?q?St=E9phane_L=E9v=EAque?= <stephane@client.example>\r\n"
        "To: support@comptoir.local\r\nSubject: =?iso-8859-1?q?Probl=E8me_de_facturation_=E0_r=E9gler?=\r\n"
        f"Message-ID: {new_message_id()}\r\nDate: {date}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="iso-8859-1"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
    ).encode() + "Bonjour, la facture de décembre est erronée. Merci d'avance — Stéphane\r\n".encode(
        "latin-1", "replace"
    )
    cases["windows1252_quotes"] = (
        "From: Agnes <agnes@client.example>\r\nTo: support@comptoir.local\r\n"
        "Subject: =?windows-1252?q?=93Urgent=94_=96_serveur_arr=EAt=E9?=\r\n"
        f"Message-ID: {new_message_id()}\r\nDate: {date}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="windows-1252"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        "Le serveur est =93arr=EAt=E9=94 depuis 8=A0h =96 c=27est bloquant =80.\r\n"
    ).encode()
    cases["gb2312"] = (
        "From: Li Wei <li@client.example>\r\nTo: support@comptoir.local\r\n"
        "Subject: =?gb2312?b?xOO6ww==?=\r\n"
        f"Message-ID: {new_message_id()}\r\nDate: {date}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="gb2312"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.b64encode("你好，电话坏了".encode("gb2312")).decode()
        + "\r\n"
    ).encode()
    cases["unknown_charset"] = (
        "From: x@client.example\r\nTo: support@comptoir.local\r\nSubject: =?x-unknown?q?caf=E9?=\r\n"
        f"Message-ID: {new_message_id()}\r\nDate: {date}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="x-unknown-charset"\r\n\r\ncaf\xe9 cr\xe8me\r\n'
    ).encode("latin-1")
    original = new_message_id()
    cases["outlook_reply"] = (
        "From: Marc Dubois <marc@client.example>\r\nTo: support@comptoir.local\r\nSubject: RE: Ligne coupée\r\n"
        f"Message-ID: {new_message_id('EXCH01.client.example')}\r\nIn-Reply-To: {original}\r\n"
        f"References: {original}\r\nThread-Topic: Ligne coupée\r\nThread-Index: AdbcdEFGhijk==\r\n"
        f"X-MS-Has-Attach: \r\nX-Auto-Response-Suppress: \r\nDate: {date}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="_000_outlook_"\r\n\r\n'
        '--_000_outlook_\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.b64encode(
            "Merci, c'est réglé.\r\n\r\nDe : Support\r\nEnvoyé : lundi\r\n> ancien".encode()
        ).decode()
        + '\r\n--_000_outlook_\r\nContent-Type: text/html; charset="utf-8"\r\n\r\n'
        "<html><body><p>Merci, c'est r&eacute;gl&eacute;.</p><script>alert(1)</script>"
        '<a href="javascript:alert(1)">x</a></body></html>\r\n--_000_outlook_--\r\n'
    ).encode()
    cases["gmail_reply"] = (
        "From: Julie <julie.client@gmail.com>\r\nTo: support@comptoir.local\r\nSubject: Re: [#99999] Demande\r\n"
        f"Message-ID: <CAF{uuid.uuid4().hex}@mail.gmail.com>\r\nIn-Reply-To: {original}\r\n"
        f"References: <a@b.example> {original}\r\nDate: {date}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="000000000000gmail"\r\n\r\n'
        '--000000000000gmail\r\nContent-Type: text/plain; charset="UTF-8"\r\n\r\nToujours en panne.\r\n\r\n'
        "Le lun. 3 nov. 2026 à 10:00, Support <support@comptoir.local> a écrit :\r\n> Bonjour\r\n"
        '--000000000000gmail\r\nContent-Type: text/html; charset="UTF-8"\r\n\r\n'
        '<div dir="ltr">Toujours en panne.</div><div class="gmail_quote">&gt; Bonjour</div>\r\n'
        "--000000000000gmail--\r\n"
    ).encode()
    cases["forwarded"] = (
        "From: Paul <paul@client.example>\r\nTo: support@comptoir.local\r\nSubject: TR: Fwd: Devis fibre\r\n"
        f"Message-ID: {new_message_id()}\r\nDate: {date}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="fwd"\r\n\r\n'
        "--fwd\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPour info, voir ci-dessous.\r\n"
        "--fwd\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: Vendeur <vente@fournisseur.example>\r\nSubject: Devis fibre\r\nMessage-ID: <devis@fournisseur.example>\r\n"
        "Content-Type: text/plain\r\n\r\nVoici le devis.\r\n--fwd--\r\n"
    ).encode()
    cases["inline_image"] = (
        "From: Zoe <zoe@client.example>\r\nTo: support@comptoir.local\r\nSubject: Capture d'écran\r\n"
        f"Message-ID: {new_message_id()}\r\nDate: {date}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/related; boundary="rel"\r\n\r\n'
        '--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Voici :</p><img src="cid:capture1@zoe">\r\n'
        "--rel\r\nContent-Type: image/png\r\nContent-ID: <capture1@zoe>\r\n"
        'Content-Disposition: inline; filename="=?utf-8?q?capture_=C3=A9cran.png?="\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PNG).decode() + "\r\n--rel--\r\n"
    ).encode()
    cases["huge_attachment"] = with_attachment(size=3 * 1024 * 1024, subject="Journal serveur (gros)")
    cases["missing_message_id"] = simple(message_id=None, subject="Sans Message-ID")
    cases["empty_subject"] = simple(
        sender="Sans Objet <sans.objet@client.example>", subject="", body="Rappelez-moi svp."
    )
    cases["future_date"] = simple(subject="Date future", date=now + timedelta(days=400))
    cases["no_date"] = (
        f"From: a@client.example\r\nTo: support@comptoir.local\r\nSubject: Pas de date\r\n"
        f"Message-ID: {new_message_id()}\r\n\r\nCorps.\r\n"
    ).encode()
    cases["out_of_office"] = simple(
        subject="Réponse automatique : absent",
        body="Je suis absent jusqu'au 5 janvier.",
        extra_headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
    )
    cases["exchange_oof"] = simple(
        subject="Absence du bureau", body="Absent.", extra_headers={"X-Auto-Response-Suppress": "All"}
    )
    cases["list_mail"] = simple(
        sender="Newsletter <news@list.example>",
        subject="La lettre du mois",
        extra_headers={
            "List-Id": "<news.list.example>",
            "Precedence": "list",
            "List-Unsubscribe": "<mailto:u@x>",
        },
    )
    cases["bulk_mail"] = simple(subject="Promo", extra_headers={"Precedence": "bulk"})
    cases["dsn_foreign"] = dsn(
        original_message_id="<someone-else@other.example>", recipient="x@nowhere.example"
    )
    cases["mailer_daemon_plain"] = simple(
        sender="MAILER-DAEMON@mx.client.example",
        subject="Undelivered Mail Returned to Sender",
        body="This is the mail system at host mx.\n\nI'm sorry to have to inform you...",
    )
    cases["malformed_mime"] = (
        "From: broken@client.example\r\nTo: support@comptoir.local\r\nSubject: MIME cassé\r\n"
        f"Message-ID: {new_message_id()}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="never-closed"\r\n\r\n'
        "--never-closed\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "!!!not base64!!!\r\n--never-closed\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nAAAA=B=\r\n"
    ).encode()
    cases["no_headers_garbage"] = b"\x00\x01\x02 this is not a mail at all \xff\xfe"
    cases["empty_file"] = b""
    cases["no_from"] = (
        f"To: support@comptoir.local\r\nSubject: Anonyme\r\nMessage-ID: {new_message_id()}\r\n\r\nx\r\n".encode()
    )
    cases["html_only"] = (
        "From: h@client.example\r\nTo: support@comptoir.local\r\nSubject: HTML seul\r\n"
        f"Message-ID: {new_message_id()}\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>Bonjour<br>la <b>box</b> clignote</p><img src=x onerror=alert(1)>\r\n"
    ).encode()
    return cases


def dsn(
    *,
    original_message_id: str,
    recipient: str,
    status: str = "5.1.1",
    sender: str = "MAILER-DAEMON@mx.example",
) -> bytes:
    """A standard delivery status notification (RFC 3464) about the mail ``original_message_id``."""
    return (
        f"From: Mail Delivery System <{sender}>\r\nTo: support@comptoir.local\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {new_message_id('mx.example')}\r\nDate: {format_datetime(datetime.now(UTC))}\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"\r\n\r\n'
        "--dsn\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--dsn\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown\r\n"
        "--dsn\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: support@comptoir.local\r\nTo: {recipient}\r\nSubject: [#1] Votre demande\r\n"
        f"Message-ID: {original_message_id}\r\n\r\n--dsn--\r\n"
    ).encode()
