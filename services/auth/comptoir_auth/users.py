"""Accounts and sign-in: plain functions over a SQLAlchemy session (no nameko here)."""

from __future__ import annotations

import re
from typing import Any

from comptoir_common.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from comptoir_common.events import Event, system_actor, user_actor
from comptoir_common.outbox import add_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comptoir_auth.models import ROLES, OutboxMessage, User
from comptoir_auth.passwords import hash_password, needs_rehash, verify_password

LOGIN_FAILED_MESSAGE = "Adresse e-mail ou mot de passe incorrect."
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 12


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def user_to_dict(user: User) -> dict[str, Any]:
    """The public view of an account (never the password hash)."""
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "phone": user.phone,
        "role": user.role,
        "customer_id": user.customer_id,
        "language": user.language,
        "active": user.active,
        "created_at": user.created_at.isoformat(),
        "updated_at": user.updated_at.isoformat(),
    }


def _event_data(user: User) -> dict[str, Any]:
    return {k: v for k, v in user_to_dict(user).items() if k not in ("created_at", "updated_at")}


def check_password_policy(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Le mot de passe doit contenir au moins {MIN_PASSWORD_LENGTH} caractères.")


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None = None,
    customer_id: str | None = None,
    phone: str | None = None,
    actor: dict[str, Any] | None = None,
) -> User:
    """Create an account; ``user.created`` goes out with it."""
    email = normalise_email(email)
    if not _EMAIL_PATTERN.match(email):
        raise InvalidInput("Adresse e-mail invalide.")
    if role not in ROLES:
        raise InvalidInput(f"Rôle inconnu : {role}.")
    if not (name or "").strip():
        raise InvalidInput("Le nom est obligatoire.")
    if role in ("client", "reseller") and not customer_id:
        raise InvalidInput("Un client ou un revendeur doit être rattaché à une société.")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("Un compte existe déjà avec cette adresse e-mail.")
    if password is not None:
        check_password_policy(password)
    user = User(
        email=email,
        name=name.strip(),
        role=role,
        customer_id=customer_id,
        phone=phone,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    add_event(
        session,
        OutboxMessage,
        Event(
            type="user.created", data=_event_data(user), actor=user_actor(actor) if actor else system_actor()
        ),
    )
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    """The active user with this email and password, or :class:`AuthenticationFailed` with one message for all.

    Unknown address, wrong password and deactivated account all take one hash verification and give the same
    answer, so that sign-in reveals nothing about which accounts exist.
    """
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    password_ok = verify_password(user.password_hash if user else None, password or "")
    if user is None or not password_ok or not user.active:
        raise AuthenticationFailed(LOGIN_FAILED_MESSAGE)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def get_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("Utilisateur introuvable.")
    return user


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0
