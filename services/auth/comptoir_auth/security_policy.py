"""Admin security settings: second factor enforced per role, and the locks brute force has caused."""

from __future__ import annotations

from typing import Any

from comptoir_common.errors import InvalidInput, NotFound
from sqlalchemy.orm import Session

from comptoir_auth import audit, throttle
from comptoir_auth.models import ROLES, RolePolicy
from comptoir_auth.policy import require_admin


def get_role_policies(session: Session, actor: dict[str, Any]) -> list[dict[str, Any]]:
    require_admin(actor)
    return [
        {
            "role": role,
            "two_factor_required": bool((session.get(RolePolicy, role) or RolePolicy()).two_factor_required),
        }
        for role in ROLES
    ]


def set_role_policy(
    session: Session,
    actor: dict[str, Any],
    *,
    role: str,
    two_factor_required: bool,
    client: dict | None = None,
) -> list[dict[str, Any]]:
    require_admin(actor)
    if role not in ROLES:
        raise InvalidInput(f"Rôle inconnu : {role}.")
    policy = session.get(RolePolicy, role)
    if policy is None:
        policy = RolePolicy(role=role)
        session.add(policy)
    if bool(policy.two_factor_required) != bool(two_factor_required):
        policy.two_factor_required = bool(two_factor_required)
        audit.record(
            session,
            "policy.changed",
            actor=actor,
            client=client,
            details={"role": role, "two_factor_required": bool(two_factor_required)},
        )
    session.flush()
    return get_role_policies(session, actor)


def list_locks(session: Session, actor: dict[str, Any]) -> list[dict[str, Any]]:
    require_admin(actor)
    return throttle.list_locks(session)


def clear_lock(session: Session, actor: dict[str, Any], *, key: str, client: dict | None = None) -> None:
    require_admin(actor)
    if not throttle.clear(session, key):
        raise NotFound("Blocage introuvable.")
    audit.record(session, "lock.cleared", actor=actor, client=client, details={"key": key})
