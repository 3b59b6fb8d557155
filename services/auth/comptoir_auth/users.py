"""Accounts: creation (with invitation), listing, edits, roles, (de)activation. Plain functions over a session."""

from __future__ import annotations

import re
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import Conflict, InvalidInput, NotFound
from comptoir_common.events import Event, system_actor, user_actor
from comptoir_common.outbox import add_event
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from comptoir_auth import audit, mails, sessions, tokens
from comptoir_auth.models import CUSTOMER_ROLES, ROLES, OutboxMessage, User
from comptoir_auth.passwords import check_password_policy, hash_password
from comptoir_auth.policy import require_admin

_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LANGUAGES = ("fr", "en")
EDITABLE_FIELDS = ("email", "name", "phone", "role", "customer_id", "language")


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
        "two_factor_enabled": bool(user.two_factor_enabled),
        "password_set": user.password_hash is not None,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


EVENT_FIELDS = ("id", "email", "name", "phone", "role", "customer_id", "language", "active")


def event_data(user: User) -> dict[str, Any]:
    """The ``data`` of ``user.*`` events: the contract's fields, never a secret."""
    public = user_to_dict(user)
    return {key: public[key] for key in EVENT_FIELDS}


def _event_actor(actor: dict[str, Any] | None) -> dict[str, Any]:
    return user_actor(actor) if actor and actor.get("id") else system_actor()


def _publish(
    session: Session, event_type: str, user: User, actor: dict[str, Any] | None, **extra: Any
) -> None:
    add_event(
        session,
        OutboxMessage,
        Event(type=event_type, data=event_data(user) | extra, actor=_event_actor(actor)),
    )


def _clean_email(email: str) -> str:
    email = normalise_email(email)
    if not _EMAIL_PATTERN.match(email) or len(email) > 320:
        raise InvalidInput("Adresse e-mail invalide.", {"field": "email"})
    return email


def _check_role_and_customer(role: str, customer_id: str | None) -> None:
    if role not in ROLES:
        raise InvalidInput(f"Rôle inconnu : {role}.", {"field": "role"})
    if role in CUSTOMER_ROLES and not customer_id:
        raise InvalidInput(
            "Un client ou un revendeur doit être rattaché à une société.", {"field": "customer_id"}
        )


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None = None,
    customer_id: str | None = None,
    phone: str | None = None,
    language: str = "fr",
    actor: dict[str, Any] | None = None,
) -> User:
    """Create an account; ``user.created`` goes out with it."""
    email = _clean_email(email)
    _check_role_and_customer(role, customer_id)
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Le nom est obligatoire.", {"field": "name"})
    if language not in LANGUAGES:
        raise InvalidInput("Langue non prise en charge.", {"field": "language"})
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("Un compte existe déjà avec cette adresse e-mail.", {"field": "email"})
    if password is not None:
        check_password_policy(password, email=email, name=name)
    user = User(
        email=email,
        name=name[:200],
        role=role,
        customer_id=customer_id if role in CUSTOMER_ROLES else customer_id or None,
        phone=(phone or "").strip() or None,
        language=language,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    _publish(session, "user.created", user, actor)
    return user


def send_invitation(
    session: Session, user: User, *, public_url: str, actor: dict[str, Any] | None, client: dict | None = None
) -> None:
    """Mail ``user`` a single-use link to choose a password (replacing any earlier invitation link)."""
    token = tokens.issue(session, user, "invitation")
    mails.queue_account_mail(
        session,
        kind="invitation",
        recipient=user.email,
        context={
            "name": user.name,
            "link": tokens.link(public_url, "invitation", token),
            "invited_by": (actor or {}).get("name") or "L'équipe support",
            "valid_days": tokens.LIFETIMES["invitation"].days,
        },
    )
    audit.record(session, "invitation.sent", user=user, actor=actor, client=client)


def admin_create_user(
    session: Session,
    actor: dict[str, Any],
    *,
    public_url: str,
    client: dict[str, Any] | None = None,
    **fields: Any,
) -> User:
    """An admin creates an account of any role; the person gets an invitation mail to choose a password."""
    require_admin(actor)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"Champs inconnus : {', '.join(sorted(unknown))}.")
    user = create_user(session, actor=actor, **fields)
    audit.record(session, "user.created", user=user, actor=actor, client=client, details={"role": user.role})
    send_invitation(session, user, public_url=public_url, actor=actor, client=client)
    return user


def get_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id or "")
    if user is None:
        raise NotFound("Utilisateur introuvable.")
    return user


def admin_get_user(session: Session, actor: dict[str, Any], user_id: str) -> User:
    require_admin(actor)
    return get_user(session, user_id)


def list_users(
    session: Session,
    actor: dict[str, Any],
    *,
    q: str | None = None,
    role: str | None = None,
    customer_id: str | None = None,
    active: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Accounts matching a text search (name, email, phone) and filters, by name."""
    require_admin(actor)
    query = select(User)
    if q and q.strip():
        pattern = f"%{q.strip().lower()}%"
        query = query.where(
            or_(
                func.lower(User.name).like(pattern),
                User.email.like(pattern),
                func.lower(func.coalesce(User.phone, "")).like(pattern),
            )
        )
    if role:
        if role not in ROLES:
            raise InvalidInput(f"Rôle inconnu : {role}.", {"field": "role"})
        query = query.where(User.role == role)
    if customer_id:
        query = query.where(User.customer_id == customer_id)
    if active is not None:
        query = query.where(User.active.is_(bool(active)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    limit = max(1, min(int(limit), 200))
    rows = session.scalars(
        query.order_by(func.lower(User.name), User.email).limit(limit).offset(max(0, int(offset)))
    ).all()
    return {"items": [user_to_dict(user) for user in rows], "total": total, "limit": limit, "offset": offset}


def update_user(
    session: Session,
    actor: dict[str, Any],
    user_id: str,
    changes: dict[str, Any],
    *,
    client: dict[str, Any] | None = None,
) -> User:
    """Edit an account (admin). A new role or company ends the person's sessions, so tokens never carry a stale role."""
    require_admin(actor)
    user = get_user(session, user_id)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"Champs non modifiables : {', '.join(sorted(unknown))}.")
    new = {field: changes.get(field, getattr(user, field)) for field in EDITABLE_FIELDS}
    new["email"] = _clean_email(new["email"])
    new["name"] = (new["name"] or "").strip()[:200]
    new["phone"] = (new["phone"] or "").strip() or None
    new["customer_id"] = new["customer_id"] or None
    if not new["name"]:
        raise InvalidInput("Le nom est obligatoire.", {"field": "name"})
    if new["language"] not in LANGUAGES:
        raise InvalidInput("Langue non prise en charge.", {"field": "language"})
    _check_role_and_customer(new["role"], new["customer_id"])
    if user.id == actor["id"] and new["role"] != "admin":
        raise InvalidInput("Vous ne pouvez pas retirer votre propre rôle de superviseur.", {"field": "role"})
    if new["email"] != user.email and session.scalar(select(User.id).where(User.email == new["email"])):
        raise Conflict("Un compte existe déjà avec cette adresse e-mail.", {"field": "email"})
    diff = {
        field: {"old": getattr(user, field), "new": value}
        for field, value in new.items()
        if getattr(user, field) != value
    }
    if not diff:
        return user
    for field, change in diff.items():
        setattr(user, field, change["new"])
    session.flush()
    _publish(session, "user.updated", user, actor, changes=diff)
    audit.record(
        session, "user.updated", user=user, actor=actor, client=client, details={"fields": sorted(diff)}
    )
    if "role" in diff:
        audit.record(
            session,
            "role.changed",
            user=user,
            actor=actor,
            client=client,
            details={"old": diff["role"]["old"], "new": diff["role"]["new"]},
        )
    if {"role", "customer_id", "email"} & set(diff):
        sessions.revoke_all(session, user, actor=actor, reason="identity_changed")
    return user


def deactivate_user(
    session: Session, actor: dict[str, Any], user_id: str, *, client: dict[str, Any] | None = None
) -> User:
    """Lock the person out at once: every session is revoked and sign-in refused."""
    require_admin(actor)
    user = get_user(session, user_id)
    if user.id == actor["id"]:
        raise InvalidInput("Vous ne pouvez pas désactiver votre propre compte.")
    if not user.active:
        return user
    user.active = False
    session.flush()
    _publish(session, "user.deactivated", user, actor)
    sessions.revoke_all(session, user, actor=actor, reason="deactivated")
    audit.record(session, "user.deactivated", user=user, actor=actor, client=client)
    return user


def reactivate_user(
    session: Session, actor: dict[str, Any], user_id: str, *, client: dict[str, Any] | None = None
) -> User:
    require_admin(actor)
    user = get_user(session, user_id)
    if user.active:
        return user
    user.active = True
    session.flush()
    _publish(session, "user.reactivated", user, actor)
    audit.record(session, "user.reactivated", user=user, actor=actor, client=client)
    return user


def update_own_profile(
    session: Session, actor: dict[str, Any], changes: dict[str, Any], *, client: dict[str, Any] | None = None
) -> User:
    """What a person may change on their own account: name, phone, language."""
    from comptoir_auth.policy import require_actor

    user = get_user(session, require_actor(actor)["id"])
    unknown = set(changes) - {"name", "phone", "language"}
    if unknown:
        raise InvalidInput(f"Champs non modifiables : {', '.join(sorted(unknown))}.")
    new = {field: changes.get(field, getattr(user, field)) for field in ("name", "phone", "language")}
    new["name"] = (new["name"] or "").strip()[:200]
    new["phone"] = (new["phone"] or "").strip() or None
    if not new["name"]:
        raise InvalidInput("Le nom est obligatoire.", {"field": "name"})
    if new["language"] not in LANGUAGES:
        raise InvalidInput("Langue non prise en charge.", {"field": "language"})
    diff = {f: {"old": getattr(user, f), "new": v} for f, v in new.items() if getattr(user, f) != v}
    if diff:
        for field, change in diff.items():
            setattr(user, field, change["new"])
        session.flush()
        _publish(session, "user.updated", user, actor, changes=diff)
        audit.record(
            session, "user.updated", user=user, actor=actor, client=client, details={"fields": sorted(diff)}
        )
    return user


def accept_invitation(
    session: Session, *, token: str, password: str, client: dict[str, Any] | None = None
) -> User:
    """The invited person chooses a password through the single-use link."""
    row = tokens.find_valid(session, token, "invitation")
    user = get_user(session, row.user_id)
    if not user.active:
        raise InvalidInput(tokens.INVALID_LINK_MESSAGE)
    check_password_policy(password, email=user.email, name=user.name)
    set_password(session, user, password)
    row.used_at = utcnow()
    audit.record(session, "invitation.accepted", user=user, actor=_self_actor(user), client=client)
    return user


def invitation_info(session: Session, token: str) -> dict[str, Any]:
    """Who a still-valid invitation or reset link is for (the page greets them)."""
    for purpose in ("invitation", "reset"):
        try:
            row = tokens.find_valid(session, token, purpose)
        except InvalidInput:
            continue
        user = get_user(session, row.user_id)
        return {"purpose": purpose, "name": user.name, "email": user.email}
    raise InvalidInput(tokens.INVALID_LINK_MESSAGE)


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()


def _self_actor(user: User) -> dict[str, Any]:
    return {"id": user.id, "role": user.role, "name": user.name}


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0
