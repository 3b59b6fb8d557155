"""Subscriptions: admins only, the secret shown once, event-type patterns from the catalogue, target rules (SSRF)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from comptoir_common.errors import InvalidInput, NotFound, PermissionDenied
from comptoir_webhooks import subscriptions
from comptoir_webhooks.models import Delivery
from comptoir_webhooks.targets import TargetRules, address_allowed
from sqlalchemy import select

ADMIN = {"id": str(uuid.uuid4()), "role": "admin", "name": "Alice Admin"}
DEV = TargetRules(allow_http=True, allow_private=True)
PRODUCTION = TargetRules()


def _create(session, **fields):
    values = {"name": "CRM", "url": "http://127.0.0.1:9/hook", "event_types": ["ticket.*"]} | fields
    return subscriptions.create_subscription(session, actor=ADMIN, fields=values, rules=DEV)


def _envelope(event_type="ticket.created", event_id=None, **data):
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": "2026-11-28T08:00:00+00:00",
        "actor": {"kind": "system", "id": None, "name": "test"},
        "data": data or {"ticket": {"id": str(uuid.uuid4())}},
    }


@pytest.mark.parametrize("role", ["agent", "sales", "client", "reseller"])
def test_only_admins_manage_subscriptions(session, role):
    created = _create(session)
    actor = {"id": str(uuid.uuid4()), "role": role, "name": "X"}
    calls = [
        lambda: subscriptions.list_subscriptions(session, actor=actor),
        lambda: subscriptions.get_subscription(session, actor=actor, subscription_id=created["id"]),
        lambda: subscriptions.create_subscription(
            session,
            actor=actor,
            fields={"name": "x", "url": "https://example.com", "event_types": ["*"]},
            rules=DEV,
        ),
        lambda: subscriptions.update_subscription(
            session, actor=actor, subscription_id=created["id"], fields={"active": False}, rules=DEV
        ),
        lambda: subscriptions.delete_subscription(session, actor=actor, subscription_id=created["id"]),
        lambda: subscriptions.rotate_secret(
            session, actor=actor, subscription_id=created["id"], overlap=timedelta(hours=1)
        ),
        lambda: subscriptions.list_deliveries(session, actor=actor, subscription_id=created["id"]),
        lambda: subscriptions.send_test_event(session, actor=actor, subscription_id=created["id"]),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()


def test_secret_is_shown_at_creation_and_rotation_only(session):
    created = _create(session)
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    listed = subscriptions.list_subscriptions(session, actor=ADMIN)
    fetched = subscriptions.get_subscription(session, actor=ADMIN, subscription_id=created["id"])
    assert all("secret" not in item for item in listed) and "secret" not in fetched
    rotated = subscriptions.rotate_secret(
        session, actor=ADMIN, subscription_id=created["id"], overlap=timedelta(hours=24)
    )
    assert rotated["secret"] != created["secret"] and rotated["previous_secret_expires_at"]


@pytest.mark.parametrize(
    "patterns", [["ticket.*"], ["ticket.created", "wiki.page_updated"], ["*"], "ticket.*, user.*"]
)
def test_patterns_from_the_catalogue_are_accepted(session, patterns):
    assert _create(session, event_types=patterns)["event_types"]


@pytest.mark.parametrize(
    "patterns", [[], ["ticket.nothing"], ["nope.*"], ["ticket.created; DROP"], ["Ticket.*"]]
)
def test_unknown_patterns_are_refused_in_french(session, patterns):
    with pytest.raises(InvalidInput) as error:
        _create(session, event_types=patterns)
    assert "événement" in str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # http outside development
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",
        "not a url",
    ],
)
def test_production_rules_refuse_plain_http_and_internal_addresses(session, url):
    with pytest.raises(InvalidInput):
        subscriptions.create_subscription(
            session, actor=ADMIN, fields={"name": "x", "url": url, "event_types": ["*"]}, rules=PRODUCTION
        )


def test_public_https_targets_are_accepted_in_production(session):
    created = subscriptions.create_subscription(
        session,
        actor=ADMIN,
        fields={"name": "x", "url": "https://93.184.215.14/hook?token=1", "event_types": ["*"]},
        rules=PRODUCTION,
    )
    assert created["url"] == "https://93.184.215.14/hook?token=1"


def test_address_rules():
    import ipaddress

    assert address_allowed(ipaddress.ip_address("93.184.215.14"), False)
    assert not address_allowed(ipaddress.ip_address("127.0.0.1"), False)
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), True)
    assert not address_allowed(ipaddress.ip_address("0.0.0.0"), True)
    assert not address_allowed(ipaddress.ip_address("100.64.0.1"), False)  # carrier-grade NAT


def test_an_event_is_queued_once_per_matching_active_subscription(session):
    tickets = _create(session, event_types=["ticket.*"])
    users = _create(session, event_types=["user.created"])
    paused = _create(session, event_types=["*"], active=False)
    envelope = _envelope("ticket.created")
    assert subscriptions.queue_event(session, envelope) == 1
    assert subscriptions.queue_event(session, envelope) == 0  # the same event again
    rows = session.scalars(select(Delivery).where(Delivery.event_id == envelope["id"])).all()
    assert [row.subscription_id for row in rows] == [tickets["id"]]
    assert users["id"] != paused["id"]


def test_replay_requeues_a_delivery_with_fresh_attempts(session):
    created = _create(session)
    envelope = _envelope()
    subscriptions.queue_event(session, envelope)
    delivery = session.scalar(select(Delivery).where(Delivery.event_id == envelope["id"]))
    delivery.status, delivery.attempts = "failed", 15
    replayed = subscriptions.replay_delivery(session, actor=ADMIN, delivery_id=delivery.id)
    assert (replayed["status"], replayed["attempts"], replayed["replays"]) == ("pending", 0, 1)
    log = subscriptions.list_deliveries(session, actor=ADMIN, subscription_id=created["id"])
    assert log["total"] == 1 and log["items"][0]["id"] == delivery.id
    with pytest.raises(NotFound):
        subscriptions.replay_delivery(session, actor=ADMIN, delivery_id=str(uuid.uuid4()))


def test_deleting_a_subscription_removes_its_log(session):
    created = _create(session)
    subscriptions.queue_event(session, _envelope())
    subscriptions.delete_subscription(session, actor=ADMIN, subscription_id=created["id"])
    assert session.scalar(select(Delivery).where(Delivery.subscription_id == created["id"])) is None
    with pytest.raises(NotFound):
        subscriptions.get_subscription(session, actor=ADMIN, subscription_id=created["id"])


def test_old_finished_deliveries_are_pruned_pending_ones_stay(session):
    from comptoir_common.db import utcnow

    created = _create(session)
    for _ in range(3):
        subscriptions.queue_event(session, _envelope())
    old_delivered, old_pending, recent = session.scalars(
        select(Delivery).where(Delivery.subscription_id == created["id"]).order_by(Delivery.id)
    ).all()
    old_delivered.status, old_delivered.queued_at = "delivered", utcnow() - timedelta(days=31)
    old_pending.queued_at = utcnow() - timedelta(days=31)
    recent.status = "failed"
    session.flush()
    assert subscriptions.prune_deliveries(session, older_than=timedelta(days=30)) >= 1
    left = set(session.scalars(select(Delivery.id).where(Delivery.subscription_id == created["id"])))
    assert left == {old_pending.id, recent.id}
