"""Single-use links sent by mail (invitation to choose a password, password reset), stored hashed."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from comptoir_auth.models import AccountToken, User

LIFETIMES = {"invitation": timedelta(days=7), "reset": timedelta(hours=1)}
INVALID_LINK_MESSAGE = "Ce lien n'est plus valable (déjà utilisé ou expiré). Demandez-en un nouveau."


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, user: User, purpose: str) -> str:
    """A new link token for ``user``; earlier unused tokens of the same purpose stop working. Returns it in clear."""
    now = utcnow()
    session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user.id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None)
        )
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_token(token),
            expires_at=now + LIFETIMES[purpose],
        )
    )
    session.flush()
    return token


def find_valid(session: Session, token: str, purpose: str) -> AccountToken:
    """The unused, unexpired token row, or :class:`InvalidInput` (one message for every reason)."""
    row = session.scalar(
        select(AccountToken).where(
            AccountToken.token_hash == hash_token(token or ""), AccountToken.purpose == purpose
        )
    )
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise InvalidInput(INVALID_LINK_MESSAGE)
    return row


def link(public_url: str, purpose: str, token: str) -> str:
    path = {"invitation": "invitation", "reset": "mot-de-passe/reinitialiser"}[purpose]
    return f"{public_url.rstrip('/')}/{path}/{token}"
