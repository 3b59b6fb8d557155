"""Account mails (invitation, reset link, sign-in code, sign-up acknowledgement) handed to the notifier by RPC.

Secrets must never travel in events, so these mails do not come from events: the state change writes an
``account_mails`` row in the same transaction (a command outbox), and the service's dispatcher calls
``notifier.send_account_mail`` for each pending row, then empties its context. The notifier queues the mail at most
once per request id, so a dispatch repeated after a crash sends one mail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from comptoir_common.db import utcnow
from sqlalchemy import select
from sqlalchemy.orm import Session

from comptoir_auth.models import AccountMail

log = logging.getLogger(__name__)

KINDS = ("invitation", "password_reset", "login_code", "signup_received", "signup_rejected")


def queue_account_mail(
    session: Session, *, kind: str, recipient: str, context: dict[str, Any]
) -> AccountMail:
    """Queue one account mail in the caller's transaction."""
    if kind not in KINDS:
        raise ValueError(f"unknown account mail kind {kind!r}")
    mail = AccountMail(kind=kind, recipient=recipient, context=context)
    session.add(mail)
    session.flush()
    return mail


SendAccountMail = Callable[[str, str, dict[str, Any], str], Any]


def dispatch_pending(session: Session, send: SendAccountMail, batch_size: int = 50) -> int:
    """Hand pending account mails to the notifier; returns how many went. The caller commits."""
    rows = session.scalars(
        select(AccountMail)
        .where(AccountMail.handed_over_at.is_(None))
        .order_by(AccountMail.created_at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    ).all()
    handed = 0
    for mail in rows:
        mail.attempts += 1
        try:
            send(mail.kind, mail.recipient, mail.context or {}, mail.id)
        except Exception as exc:  # the notifier is down or refused: keep the row, retry on the next pass
            mail.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning("account mail not handed to the notifier", extra={"mail_id": mail.id})
            break
        mail.handed_over_at = utcnow()
        mail.context = None  # the link or code is no longer needed here
        mail.last_error = None
        handed += 1
    return handed
