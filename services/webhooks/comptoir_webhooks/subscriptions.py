"""Webhook subscriptions, the deliveries queued for them, replays and test events (plain functions, no nameko).

Every function takes the caller's ``actor`` and refuses anyone but an admin; none commits.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from comptoir_common import event_catalogue
from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput, NotFound
from comptoir_common.events import Event, user_actor
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comptoir_webhooks import signing
from comptoir_webhooks.models import Delivery, Subscription
from comptoir_webhooks.policy import require_admin
from comptoir_webhooks.targets import TargetRules, check_url

TEST_EVENT_TYPE = "webhook.test"
DELIVERY_STATUSES = ("pending", "delivered", "failed")
# A pattern is an event type (``ticket.created``), a prefix with a wildcard (``ticket.*``) or ``*`` (everything).
_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")
MAX_PATTERNS = 50
MAX_RESPONSE_BODY_KEPT = 1000


def catalogue_types() -> list[str]:
    return sorted({spec.type for spec in event_catalogue.events()})


def matches(patterns: list[str], event_type: str) -> bool:
    return any(fnmatchcase(event_type, pattern) for pattern in patterns)


def clean_patterns(raw: Any) -> list[str]:
    """The event-type patterns, deduplicated, each matching at least one type of the catalogue."""
    if isinstance(raw, str):
        raw = re.split(r"[\s,]+", raw)
    if not isinstance(raw, list | tuple):
        raise InvalidInput("Les types d'événements doivent être une liste.")
    patterns = sorted({str(p).strip() for p in raw if str(p).strip()})
    if not patterns:
        raise InvalidInput("Choisissez au moins un type d'événement (par exemple ticket.*).")
    if len(patterns) > MAX_PATTERNS:
        raise InvalidInput(f"Au plus {MAX_PATTERNS} types d'événements.")
    known = catalogue_types()
    for pattern in patterns:
        if not _PATTERN.match(pattern) or not any(fnmatchcase(t, pattern) for t in known):
            raise InvalidInput(
                f"Type d'événement inconnu : « {pattern[:100]} ». Voir le catalogue des événements (/evenements)."
            )
    return patterns


def _clean_name(raw: Any) -> str:
    name = str(raw or "").strip()
    if not name:
        raise InvalidInput("Le nom est obligatoire.")
    if len(name) > 200:
        raise InvalidInput("Le nom est trop long (200 caractères au plus).")
    return name


def subscription_to_dict(subscription: Subscription, *, secret: bool = False) -> dict[str, Any]:
    result = {
        "id": subscription.id,
        "name": subscription.name,
        "url": subscription.url,
        "event_types": list(subscription.event_types or []),
        "active": subscription.active,
        "created_at": subscription.created_at.isoformat(),
        "created_by": subscription.created_by or {},
        "updated_at": subscription.updated_at.isoformat(),
        "secret_rotated_at": subscription.secret_rotated_at.isoformat(),
        "previous_secret_expires_at": (
            subscription.previous_secret_expires_at.isoformat()
            if subscription.previous_secret and subscription.previous_secret_expires_at
            else None
        ),
    }
    if secret:
        # Only in the answer to a creation or a rotation: the secret is never shown again.
        result["secret"] = subscription.secret
    return result


def delivery_to_dict(delivery: Delivery, *, body: bool = False) -> dict[str, Any]:
    iso = lambda value: value.isoformat() if value else None  # noqa: E731
    result = {
        "id": delivery.id,
        "subscription_id": delivery.subscription_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "occurred_at": iso(delivery.occurred_at),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "replays": delivery.replays,
        "next_attempt_at": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "last_attempt_at": iso(delivery.last_attempt_at),
        "last_status_code": delivery.last_status_code,
        "last_response_body": delivery.last_response_body,
        "last_error": delivery.last_error,
        "last_duration_ms": delivery.last_duration_ms,
        "delivered_at": iso(delivery.delivered_at),
        "created_at": iso(delivery.created_at),
    }
    if body:
        result["body"] = delivery.body
    return result


def _get(session: Session, subscription_id: str) -> Subscription:
    subscription = session.get(Subscription, str(subscription_id)) if subscription_id else None
    if subscription is None:
        raise NotFound("Abonnement introuvable.")
    return subscription


# --- subscriptions ---------------------------------------------------------------------------------------------


def list_subscriptions(session: Session, *, actor: dict) -> list[dict[str, Any]]:
    require_admin(actor)
    counts = {
        (sid, status): n
        for sid, status, n in session.execute(
            select(Delivery.subscription_id, Delivery.status, func.count()).group_by(
                Delivery.subscription_id, Delivery.status
            )
        )
    }
    items = []
    for subscription in session.scalars(select(Subscription).order_by(Subscription.name, Subscription.id)):
        item = subscription_to_dict(subscription)
        item["deliveries"] = {
            status: counts.get((subscription.id, status), 0) for status in DELIVERY_STATUSES
        }
        items.append(item)
    return items


def get_subscription(session: Session, *, actor: dict, subscription_id: str) -> dict[str, Any]:
    require_admin(actor)
    subscription = _get(session, subscription_id)
    item = subscription_to_dict(subscription)
    item["deliveries"] = {
        status: session.scalar(
            select(func.count()).where(Delivery.subscription_id == subscription.id, Delivery.status == status)
        )
        for status in DELIVERY_STATUSES
    }
    return item


def create_subscription(
    session: Session, *, actor: dict, fields: dict[str, Any], rules: TargetRules
) -> dict[str, Any]:
    """A new subscription; the answer carries its secret, shown this once."""
    require_admin(actor)
    now = utcnow()
    subscription = Subscription(
        id=str(uuid.uuid4()),
        name=_clean_name(fields.get("name")),
        url=check_url(fields.get("url") or "", rules),
        event_types=clean_patterns(fields.get("event_types")),
        active=bool(fields.get("active", True)),
        secret=signing.new_secret(),
        secret_rotated_at=now,
        created_at=now,
        updated_at=now,
        created_by={"id": actor.get("id"), "name": actor.get("name")},
    )
    session.add(subscription)
    session.flush()
    return subscription_to_dict(subscription, secret=True)


def update_subscription(
    session: Session, *, actor: dict, subscription_id: str, fields: dict[str, Any], rules: TargetRules
) -> dict[str, Any]:
    """Change the name, URL, event types or active flag (only the keys given)."""
    require_admin(actor)
    subscription = _get(session, subscription_id)
    if "name" in fields:
        subscription.name = _clean_name(fields["name"])
    if "url" in fields:
        subscription.url = check_url(fields["url"] or "", rules)
    if "event_types" in fields:
        subscription.event_types = clean_patterns(fields["event_types"])
    if "active" in fields:
        subscription.active = bool(fields["active"])
    subscription.updated_at = utcnow()
    session.flush()
    return get_subscription(session, actor=actor, subscription_id=subscription.id)


def delete_subscription(session: Session, *, actor: dict, subscription_id: str) -> dict[str, Any]:
    """Remove the subscription and its delivery log (nothing more is sent to it)."""
    require_admin(actor)
    subscription = _get(session, subscription_id)
    session.query(Delivery).filter(Delivery.subscription_id == subscription.id).delete()
    session.delete(subscription)
    session.flush()
    return {"deleted": True, "id": subscription_id}


def rotate_secret(
    session: Session, *, actor: dict, subscription_id: str, overlap: timedelta
) -> dict[str, Any]:
    """A new secret, shown once; the old one keeps signing (a second signature) for ``overlap``."""
    require_admin(actor)
    subscription = _get(session, subscription_id)
    now = utcnow()
    subscription.previous_secret = subscription.secret if overlap.total_seconds() > 0 else None
    subscription.previous_secret_expires_at = now + overlap if overlap.total_seconds() > 0 else None
    subscription.secret = signing.new_secret()
    subscription.secret_rotated_at = now
    subscription.updated_at = now
    session.flush()
    return subscription_to_dict(subscription, secret=True)


def signing_secrets(subscription: Subscription) -> list[str]:
    secrets_in_use = [subscription.secret]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires and expires > utcnow():
        secrets_in_use.append(subscription.previous_secret)
    return secrets_in_use


# --- deliveries ------------------------------------------------------------------------------------------------


def encode_body(envelope: dict[str, Any]) -> str:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def queue_event(session: Session, envelope: dict[str, Any]) -> int:
    """One pending delivery per active subscription that wants this event; returns how many.

    The event handler runs this once per event (the inbox), and (subscription, event) is unique besides.
    """
    event_type = envelope["type"]
    event = Event.from_envelope(envelope)
    body = encode_body(envelope)
    queued = 0
    for subscription in session.scalars(select(Subscription).where(Subscription.active.is_(True))):
        if not matches(subscription.event_types or [], event_type):
            continue
        exists = session.scalar(
            select(Delivery.id).where(
                Delivery.subscription_id == subscription.id, Delivery.event_id == event.id
            )
        )
        if exists:
            continue
        now = utcnow()
        session.add(
            Delivery(
                subscription_id=subscription.id,
                event_id=event.id,
                event_type=event_type,
                occurred_at=event.occurred_at,
                body=body,
                next_attempt_at=now,
                queued_at=now,
                created_at=now,
            )
        )
        queued += 1
    session.flush()
    return queued


def list_deliveries(
    session: Session,
    *,
    actor: dict,
    subscription_id: str,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    require_admin(actor)
    subscription = _get(session, subscription_id)
    if status and status not in DELIVERY_STATUSES:
        raise InvalidInput("État inconnu : choisissez pending, delivered ou failed.")
    where = [Delivery.subscription_id == subscription.id]
    if status:
        where.append(Delivery.status == status)
    total = session.scalar(select(func.count()).select_from(Delivery).where(*where))
    rows = session.scalars(
        select(Delivery)
        .where(*where)
        .order_by(Delivery.created_at.desc(), Delivery.id)
        .limit(max(1, min(int(limit), 200)))
        .offset(max(0, int(offset)))
    )
    return {"items": [delivery_to_dict(row) for row in rows], "total": total}


def _get_delivery(session: Session, delivery_id: str) -> Delivery:
    delivery = session.get(Delivery, str(delivery_id)) if delivery_id else None
    if delivery is None:
        raise NotFound("Envoi introuvable.")
    return delivery


def get_delivery(session: Session, *, actor: dict, delivery_id: str) -> dict[str, Any]:
    require_admin(actor)
    return delivery_to_dict(_get_delivery(session, delivery_id), body=True)


def replay_delivery(session: Session, *, actor: dict, delivery_id: str) -> dict[str, Any]:
    """Queue the delivery again now, with a fresh set of attempts (same event id and body)."""
    require_admin(actor)
    delivery = session.scalar(select(Delivery).where(Delivery.id == str(delivery_id)).with_for_update())
    if delivery is None:
        raise NotFound("Envoi introuvable.")
    now = utcnow()
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.replays += 1
    delivery.next_attempt_at = now
    delivery.queued_at = now
    delivery.delivered_at = None
    session.flush()
    return delivery_to_dict(delivery)


def prune_deliveries(session: Session, *, older_than: timedelta, chunk: int = 1000) -> int:
    """Remove delivered and failed deliveries queued before ``older_than`` ago (pending ones stay); how many."""
    cutoff = utcnow() - older_than
    removed = 0
    while True:
        ids = list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.status != "pending", Delivery.queued_at < cutoff)
                .limit(chunk)
            )
        )
        if not ids:
            return removed
        session.query(Delivery).filter(Delivery.id.in_(ids)).delete(synchronize_session=False)
        removed += len(ids)


def send_test_event(session: Session, *, actor: dict, subscription_id: str) -> dict[str, Any]:
    """Queue a ``webhook.test`` event for this subscription only (sent even while it is inactive)."""
    require_admin(actor)
    subscription = _get(session, subscription_id)
    event = Event(
        type=TEST_EVENT_TYPE,
        actor=user_actor(actor),
        data={
            "subscription_id": subscription.id,
            "subscription_name": subscription.name,
            "message": "Événement de test envoyé depuis Comptoir.",
        },
    )
    now = utcnow()
    delivery = Delivery(
        subscription_id=subscription.id,
        event_id=event.id,
        event_type=event.type,
        occurred_at=event.occurred_at,
        body=encode_body(event.to_envelope()),
        next_attempt_at=now,
        queued_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery_to_dict(delivery)
