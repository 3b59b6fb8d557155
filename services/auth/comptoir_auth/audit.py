"""The audit log: every sign-in, failure, code, password or role change and (de)activation, also as an event.

The ``audit.recorded`` event carries the same facts as the row and never a secret (no password, code or token).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from comptoir_common.events import Event, system_actor, user_actor
from comptoir_common.outbox import add_event
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from comptoir_auth.models import AuditEntry, OutboxMessage, User

# French labels of the kinds, for the admin page.
KIND_LABELS = {
    "login.succeeded": "Connexion réussie",
    "login.failed": "Échec de connexion",
    "login.locked": "Connexion bloquée (trop de tentatives)",
    "code.sent": "Code de vérification envoyé",
    "code.failed": "Code de vérification erroné",
    "code.expired": "Code de vérification expiré",
    "logout": "Déconnexion",
    "logout.everywhere": "Déconnexion de toutes les sessions",
    "password.changed": "Mot de passe modifié",
    "password.reset_requested": "Réinitialisation du mot de passe demandée",
    "password.reset": "Mot de passe réinitialisé",
    "invitation.sent": "Invitation envoyée",
    "invitation.accepted": "Invitation acceptée",
    "user.created": "Compte créé",
    "user.updated": "Compte modifié",
    "role.changed": "Rôle modifié",
    "user.deactivated": "Compte désactivé",
    "user.reactivated": "Compte réactivé",
    "two_factor.enabled": "Double authentification activée",
    "two_factor.disabled": "Double authentification désactivée",
    "device.trusted": "Navigateur de confiance ajouté",
    "device.revoked": "Navigateur de confiance révoqué",
    "lock.cleared": "Blocage levé",
    "signup.requested": "Demande de création de compte",
    "signup.approved": "Demande de compte acceptée",
    "signup.rejected": "Demande de compte refusée",
    "policy.changed": "Règle de sécurité modifiée",
}


def client_info(client: dict[str, Any] | None) -> tuple[str | None, str | None]:
    client = client or {}
    ip = (client.get("ip") or None) and str(client["ip"])[:64]
    user_agent = (client.get("user_agent") or None) and str(client["user_agent"])[:300]
    return ip, user_agent


def record(
    session: Session,
    kind: str,
    *,
    user: User | None = None,
    email: str | None = None,
    actor: dict[str, Any] | None = None,
    client: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record one fact and publish it as ``audit.recorded``."""
    ip, user_agent = client_info(client)
    entry = AuditEntry(
        kind=kind,
        user_id=user.id if user else None,
        email=user.email if user else email,
        actor_id=(actor or {}).get("id"),
        actor_name=(actor or {}).get("name"),
        ip=ip,
        user_agent=user_agent,
        details=details or {},
    )
    session.add(entry)
    session.flush()
    add_event(
        session,
        OutboxMessage,
        Event(
            type="audit.recorded",
            data=entry_to_dict(entry),
            actor=user_actor(actor) if actor and actor.get("id") else system_actor("auth"),
        ),
    )
    return entry


def entry_to_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "kind": entry.kind,
        "label": KIND_LABELS.get(entry.kind, entry.kind),
        "user_id": entry.user_id,
        "email": entry.email,
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "ip": entry.ip,
        "user_agent": entry.user_agent,
        "details": entry.details or {},
    }


def list_entries(
    session: Session,
    *,
    user_id: str | None = None,
    kind: str | None = None,
    q: str | None = None,
    before: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Newest first, filtered by user, kind (prefix) or a text search on the email and address."""
    query = select(AuditEntry)
    if user_id:
        query = query.where(AuditEntry.user_id == user_id)
    if kind:
        query = query.where(AuditEntry.kind.startswith(kind))
    if q:
        pattern = f"%{q.strip().lower()}%"
        query = query.where(or_(func.lower(AuditEntry.email).like(pattern), AuditEntry.ip.like(pattern)))
    if before:
        query = query.where(AuditEntry.at < before)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    limit = max(1, min(int(limit), 500))
    rows = session.scalars(
        query.order_by(AuditEntry.at.desc()).limit(limit).offset(max(0, int(offset)))
    ).all()
    return {"items": [entry_to_dict(row) for row in rows], "total": total}
