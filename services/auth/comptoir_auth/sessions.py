"""Server-side sessions: the gateway's signed token names one (``sid``), and a revoked session dies at once.

Revocations go out as events (``session.revoked``, ``user.sessions_revoked``) that every gateway instance
applies in memory; a starting gateway loads the current state with :func:`revocation_state`.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import AuthenticationFailed
from comptoir_common.events import Event, system_actor, user_actor
from comptoir_common.outbox import add_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from comptoir_auth.audit import client_info
from comptoir_auth.models import OutboxMessage, User
from comptoir_auth.models import Session as UserSession

LIFETIMES = {"web": timedelta(hours=12), "api": timedelta(days=7)}
SESSION_ENDED_MESSAGE = "Votre session a pris fin. Connectez-vous à nouveau."


def create(session: Session, user: User, *, kind: str, client: dict[str, Any] | None = None) -> UserSession:
    if kind not in LIFETIMES:
        raise ValueError(f"unknown session kind {kind!r}")
    ip, user_agent = client_info(client)
    now = utcnow()
    row = UserSession(
        id=secrets.token_urlsafe(24),
        user_id=user.id,
        kind=kind,
        created_at=now,
        last_seen_at=now,
        expires_at=now + LIFETIMES[kind],
        ip=ip,
        user_agent=user_agent,
    )
    session.add(row)
    user.last_login_at = now
    session.flush()
    return row


def session_to_dict(row: UserSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "created_at": row.created_at.isoformat(),
        "last_seen_at": row.last_seen_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "ip": row.ip,
        "user_agent": row.user_agent,
    }


def _actor(actor: dict[str, Any] | None) -> dict[str, Any]:
    return user_actor(actor) if actor and actor.get("id") else system_actor("auth")


def revoke(session: Session, session_id: str, *, actor: dict[str, Any] | None = None) -> UserSession | None:
    """End one session (sign-out); ``session.revoked`` tells the gateways."""
    row = session.get(UserSession, session_id)
    if row is None or row.revoked_at is not None:
        return row
    row.revoked_at = utcnow()
    add_event(
        session,
        OutboxMessage,
        Event(
            type="session.revoked",
            data={"session_id": row.id, "user_id": row.user_id, "expires_at": row.expires_at.isoformat()},
            actor=_actor(actor),
        ),
    )
    return row


def revoke_all(
    session: Session,
    user: User,
    *,
    actor: dict[str, Any] | None = None,
    reason: str = "logout_everywhere",
    keep: str | None = None,
) -> list[str]:
    """End every open session of ``user`` but ``keep`` (sign-out everywhere, deactivation, role change, new
    password)."""
    now = utcnow()
    rows = session.scalars(
        select(UserSession).where(
            UserSession.user_id == user.id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
            UserSession.id != (keep or ""),
        )
    ).all()
    for row in rows:
        row.revoked_at = now
    user.sessions_valid_after = now
    add_event(
        session,
        OutboxMessage,
        Event(
            type="user.sessions_revoked",
            data={
                "user_id": user.id,
                "reason": reason,
                "sessions": [{"id": row.id, "expires_at": row.expires_at.isoformat()} for row in rows],
                "revoked_at": now.isoformat(),
            },
            actor=_actor(actor),
        ),
    )
    return [row.id for row in rows]


def active_session(session: Session, session_id: str) -> tuple[UserSession, User]:
    """The open session and its active user, or :class:`AuthenticationFailed`."""
    row = session.get(UserSession, session_id or "")
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        raise AuthenticationFailed(SESSION_ENDED_MESSAGE)
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise AuthenticationFailed(SESSION_ENDED_MESSAGE)
    return row, user


def refresh(session: Session, session_id: str) -> tuple[UserSession, User]:
    """Renew an API token: the session must still be open; returns the fresh identity."""
    row, user = active_session(session, session_id)
    row.last_seen_at = utcnow()
    return row, user


def list_for_user(session: Session, user_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > utcnow(),
        )
        .order_by(UserSession.created_at.desc())
    ).all()
    return [session_to_dict(row) for row in rows]


def revocation_state(session: Session) -> dict[str, Any]:
    """What a starting gateway must refuse: deactivated users and revoked sessions that have not expired."""
    now = utcnow()
    inactive = session.scalars(select(User.id).where(User.active.is_(False))).all()
    revoked = session.execute(
        select(UserSession.id, UserSession.expires_at).where(
            UserSession.revoked_at.is_not(None), UserSession.expires_at > now
        )
    ).all()
    return {
        "inactive_user_ids": list(inactive),
        "revoked_sessions": [{"id": sid, "expires_at": expires.isoformat()} for sid, expires in revoked],
        "at": now.isoformat(),
    }
