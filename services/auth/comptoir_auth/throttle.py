"""Brute-force limits on sign-in, per account and per address, with growing lock times.

An account key is the normalised email whether or not an account exists, so a lock says nothing about which
addresses have accounts.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import TooManyRequests
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from comptoir_auth.models import LoginThrottle, User

# The failure that reaches this count locks for 1 minute, each further one for twice as long (at most an hour).
FREE_FAILURES = {"account": 5, "ip": 20}
FIRST_LOCK = timedelta(minutes=1)
MAX_LOCK = timedelta(hours=1)
# Failures older than this are forgotten.
FAILURE_MEMORY = timedelta(hours=24)


def account_key(email: str) -> str:
    return f"account:{(email or '').strip().lower()}"


def ip_key(ip: str | None) -> str | None:
    return f"ip:{ip}" if ip else None


def lock_message(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Trop de tentatives de connexion. Réessayez dans {minutes} {unit}."


def _keys(email: str, ip: str | None) -> list[str]:
    return [key for key in (account_key(email), ip_key(ip)) if key]


def check(session: Session, email: str, ip: str | None) -> None:
    """Raise :class:`TooManyRequests` if the account or the address is locked now."""
    now = utcnow()
    remaining = 0.0
    for key in _keys(email, ip):
        row = session.get(LoginThrottle, key)
        if row and row.locked_until and row.locked_until > now:
            remaining = max(remaining, (row.locked_until - now).total_seconds())
    if remaining:
        raise TooManyRequests(lock_message(remaining), {"retry_after": math.ceil(remaining)})


def record_failure(session: Session, email: str, ip: str | None) -> float:
    """Count a failure; returns the lock it earned in seconds (0 if none)."""
    now = utcnow()
    longest = 0.0
    for key in _keys(email, ip):
        row = session.get(LoginThrottle, key, with_for_update=True)
        if row is None:
            row = LoginThrottle(key=key, failures=0)
            session.add(row)
        if row.last_failure_at and now - row.last_failure_at > FAILURE_MEMORY:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        over = row.failures - FREE_FAILURES[key.split(":", 1)[0]] + 1
        if over > 0:
            lock = min(FIRST_LOCK * 2 ** (over - 1), MAX_LOCK)
            row.locked_until = now + lock
            longest = max(longest, lock.total_seconds())
    session.flush()
    return longest


def record_success(session: Session, email: str) -> None:
    """A successful sign-in clears the account's failures (the address keeps its count)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == account_key(email)))


def list_locks(session: Session) -> list[dict[str, Any]]:
    """Accounts and addresses locked now (for admins), with the account when one exists."""
    now = utcnow()
    rows = session.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.locked_until > now)
        .order_by(LoginThrottle.locked_until.desc())
    ).all()
    locks = []
    for row in rows:
        kind, value = row.key.split(":", 1)
        user = session.scalar(select(User).where(User.email == value)) if kind == "account" else None
        locks.append(
            {
                "key": row.key,
                "kind": kind,
                "value": value,
                "user_id": user.id if user else None,
                "user_name": user.name if user else None,
                "failures": row.failures,
                "locked_until": row.locked_until.isoformat(),
                "last_failure_at": row.last_failure_at.isoformat() if row.last_failure_at else None,
            }
        )
    return locks


def clear(session: Session, key: str) -> bool:
    return bool(session.execute(delete(LoginThrottle).where(LoginThrottle.key == key)).rowcount)
