"""Account mails asked for by the auth service over RPC (invitation, reset link, sign-in code, sign-up answers).

They carry secrets (links, codes), so they never come from events: auth calls ``send_account_mail`` with a request
id, and the mail is queued in ``outgoing_mails`` at most once per request id, like every other mail.
"""

from __future__ import annotations

import uuid
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput
from sqlalchemy import select
from sqlalchemy.orm import Session

from comptoir_notifier.models import OutgoingMail
from comptoir_notifier.notifications import MailContext
from comptoir_notifier.rendering import overrides, render

# kind → template name (templates/account_<kind>.*)
ACCOUNT_MAIL_KINDS = ("invitation", "password_reset", "login_code", "signup_received", "signup_rejected")


def queue_account_mail(
    session: Session,
    *,
    kind: str,
    recipient: str,
    context: dict[str, Any],
    request_id: str,
    mail_context: MailContext,
) -> OutgoingMail | None:
    """Queue one account mail; None if this request id was already queued."""
    if kind not in ACCOUNT_MAIL_KINDS:
        raise InvalidInput(f"Type de message de compte inconnu : {kind}.")
    recipient = (recipient or "").strip().lower()
    if "@" not in recipient:
        raise InvalidInput("Adresse e-mail invalide.")
    mail_kind = f"account_{kind}"
    existing = session.scalar(
        select(OutgoingMail.id).where(OutgoingMail.event_id == request_id, OutgoingMail.kind == mail_kind)
    )
    if existing is not None:
        return None
    rendered = render(
        mail_kind,
        {"recipient": recipient, "public_url": mail_context.public_url.rstrip("/"), **context},
        mail_context.templates_dir,
        overrides(session),
    )
    mail_id = str(uuid.uuid4())
    mail = OutgoingMail(
        id=mail_id,
        event_id=request_id,
        kind=mail_kind,
        recipient=recipient,
        ticket_id=None,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        message_id=f"<{mail_kind}.{mail_id}@{mail_context.mail_domain}>",
        headers={"Auto-Submitted": "auto-generated"},
        next_attempt_at=utcnow(),
    )
    session.add(mail)
    session.flush()
    return mail
