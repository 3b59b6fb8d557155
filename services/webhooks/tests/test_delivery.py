"""Sending deliveries to a real HTTP receiver: signature, retries and backoff, permanent refusals, address rules,
and several instances sharing the work (``FOR UPDATE SKIP LOCKED``)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
from comptoir_common.db import make_session_factory, utcnow
from comptoir_testing import infra
from comptoir_webhooks import delivery, signing, subscriptions
from comptoir_webhooks.models import Delivery, Subscription
from comptoir_webhooks.targets import TargetRules
from sqlalchemy import delete, select

ADMIN = {"id": str(uuid.uuid4()), "role": "admin", "name": "Alice Admin"}
DEV = TargetRules(allow_http=True, allow_private=True)
POLICY = delivery.DeliveryPolicy(rules=DEV, timeout=5, first_retry_seconds=10, max_attempts=3)


def _setup(session, url, event_types=("ticket.*",)):
    created = subscriptions.create_subscription(
        session, actor=ADMIN, fields={"name": "CRM", "url": url, "event_types": list(event_types)}, rules=DEV
    )
    envelope = {
        "id": str(uuid.uuid4()),
        "type": "ticket.message_added",
        "version": 1,
        "occurred_at": "2026-11-28T08:00:00+00:00",
        "actor": {"kind": "user", "id": None, "role": "agent", "name": "Hugo"},
        "data": {
            "ticket": {"id": str(uuid.uuid4())},
            "message": {"internal": True, "body": "Note « interne »"},
        },
    }
    subscriptions.queue_event(session, envelope)
    row = session.scalar(select(Delivery).where(Delivery.event_id == envelope["id"]))
    return created, envelope, row


def test_a_delivery_is_posted_signed_and_recorded(session, receiver):
    created, envelope, row = _setup(session, receiver.url)
    assert delivery.attempt(session, row, POLICY) == "delivered"
    request = receiver.wait_for(lambda r: True)
    assert request.path == "/hooks/comptoir"
    assert request.json == envelope  # the envelope as published, internal flag included
    headers = request.headers
    assert headers["x-comptoir-event-id"] == envelope["id"]
    assert headers["x-comptoir-event-type"] == "ticket.message_added"
    assert headers["x-comptoir-delivery-id"] == row.id
    assert headers["content-type"].startswith("application/json")
    timestamp = int(headers["x-comptoir-timestamp"])
    assert abs(time.time() - timestamp) < 600
    assert signing.verify(created["secret"], headers["x-comptoir-signature"], timestamp, request.body)
    assert not signing.verify("whsec_other", headers["x-comptoir-signature"], timestamp, request.body)
    assert not signing.verify(created["secret"], headers["x-comptoir-signature"], timestamp + 1, request.body)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    assert row.last_response_body == '{"ok": true}' and row.delivered_at is not None


def test_during_a_rotation_both_secrets_sign(session, receiver):
    created, _, row = _setup(session, receiver.url)
    rotated = subscriptions.rotate_secret(
        session, actor=ADMIN, subscription_id=created["id"], overlap=timedelta(hours=1)
    )
    delivery.attempt(session, row, POLICY)
    request = receiver.wait_for(lambda r: True)
    header, timestamp = request.headers["x-comptoir-signature"], int(request.headers["x-comptoir-timestamp"])
    assert header.count("v1=") == 2
    assert signing.verify(rotated["secret"], header, timestamp, request.body)
    assert signing.verify(created["secret"], header, timestamp, request.body)


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_temporary_failures_are_retried_with_backoff(session, receiver, status):
    _, _, row = _setup(session, receiver.url)
    receiver.respond_with(status, b"busy")
    before = utcnow()
    assert delivery.attempt(session, row, POLICY) == "retry"
    assert (row.status, row.attempts, row.last_status_code, row.last_response_body) == (
        "pending",
        1,
        status,
        "busy",
    )
    first_delay = (row.next_attempt_at - before).total_seconds()
    assert 10 <= first_delay <= 12
    assert delivery.attempt(session, row, POLICY) == "retry"
    assert (row.next_attempt_at - utcnow()).total_seconds() >= 19  # doubled
    assert delivery.attempt(session, row, POLICY) == "failed"  # max_attempts reached
    assert row.status == "failed" and "3 tentatives" in row.last_error


def test_retry_after_is_honoured(session, receiver):
    _, _, row = _setup(session, receiver.url)
    receiver.respond_with(429, b"slow down", headers={"Retry-After": "120"})
    assert delivery.attempt(session, row, POLICY) == "retry"
    assert (row.next_attempt_at - utcnow()).total_seconds() >= 115


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422, 301])
def test_other_statuses_are_permanent_failures(session, receiver, status):
    _, _, row = _setup(session, receiver.url)
    receiver.respond_with(status, b'{"error": "unknown hook"}')
    assert delivery.attempt(session, row, POLICY) == "failed"
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, status)
    assert "définitif" in row.last_error


def test_a_receiver_that_is_down_is_retried(session):
    _, _, row = _setup(session, f"http://127.0.0.1:{infra.free_port()}/hook")
    assert delivery.attempt(session, row, POLICY) == "retry"
    assert row.status == "pending" and "ConnectionRefused" in row.last_error


def test_a_receiver_that_does_not_answer_times_out_and_is_retried(session):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        _, _, row = _setup(session, f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
        policy = delivery.DeliveryPolicy(rules=DEV, timeout=0.5, max_attempts=3)
        assert delivery.attempt(session, row, policy) == "retry"
        assert "timed out" in row.last_error or "Timeout" in row.last_error
    finally:
        listener.close()


def test_old_deliveries_are_given_up(session):
    _, _, row = _setup(session, f"http://127.0.0.1:{infra.free_port()}/hook")
    row.queued_at = utcnow() - timedelta(hours=49)
    assert delivery.attempt(session, row, POLICY) == "failed"


def test_a_private_address_is_refused_at_send_time(session, receiver):
    """Allowed when saved (development), refused when the production rules apply: nothing is sent."""
    _, _, row = _setup(session, receiver.url)
    production = delivery.DeliveryPolicy(rules=TargetRules(allow_http=True, allow_private=False))
    assert delivery.attempt(session, row, production) == "failed"
    assert "Adresse refusée" in row.last_error and receiver.requests == []


def _others(session, subscription_id) -> set[str]:
    """Every other subscription (committed by other tests in this database): their rows are not this test's."""
    return set(session.scalars(select(Subscription.id).where(Subscription.id != subscription_id)))


def test_deliveries_of_paused_subscriptions_wait_but_test_events_go(session, receiver):
    created, _, row = _setup(session, receiver.url)
    subscriptions.update_subscription(
        session, actor=ADMIN, subscription_id=created["id"], fields={"active": False}, rules=DEV
    )
    assert delivery.claim_next_due(session, _others(session, created["id"])) is None
    test = subscriptions.send_test_event(session, actor=ADMIN, subscription_id=created["id"])
    claimed = delivery.claim_next_due(session, _others(session, created["id"]))
    assert claimed is not None and claimed.id == test["id"] and claimed.event_type == "webhook.test"
    assert delivery.attempt(session, claimed, POLICY) == "delivered"
    assert receiver.wait_for(lambda r: True).json["data"]["subscription_id"] == created["id"]


def test_two_instances_never_claim_the_same_delivery(engine, receiver):
    """Committed rows, two sessions as two instances: the second skips what the first holds."""
    factory = make_session_factory(engine)
    with factory() as setup:
        created = subscriptions.create_subscription(
            setup,
            actor=ADMIN,
            fields={"name": "Partage", "url": receiver.url, "event_types": ["ticket.*"]},
            rules=DEV,
        )
        for _ in range(2):
            subscriptions.queue_event(
                setup,
                {
                    "id": str(uuid.uuid4()),
                    "type": "ticket.created",
                    "version": 1,
                    "occurred_at": "2026-11-28T08:00:00+00:00",
                    "actor": {"kind": "system", "id": None},
                    "data": {},
                },
            )
        setup.commit()
    first, second = factory(), factory()
    try:
        mine = {row.id for row in session_rows(first, created["id"])}
        others = _others(first, created["id"])
        a = delivery.claim_next_due(first, others)
        b = delivery.claim_next_due(second, others)
        assert a is not None and b is not None and a.id != b.id
        assert {a.id, b.id} == mine
        third = factory()
        try:
            assert delivery.claim_next_due(third, others) is None  # both are held
        finally:
            third.close()
        delivery.attempt(first, a, POLICY)
        delivery.attempt(second, b, POLICY)
        first.commit()
        second.commit()
        assert len(receiver.requests) == 2
        assert len({json.loads(r.body)["id"] for r in receiver.requests}) == 2
    finally:
        first.close()
        second.close()
        with factory() as cleanup:
            cleanup.execute(delete(Delivery).where(Delivery.subscription_id == created["id"]))
            cleanup.execute(delete(Subscription).where(Subscription.id == created["id"]))
            cleanup.commit()


def session_rows(session, subscription_id):
    return session.scalars(select(Delivery).where(Delivery.subscription_id == subscription_id)).all()


def test_a_pass_skips_a_failing_receiver_after_one_attempt(session, receiver):
    down, _, _ = _setup(session, f"http://127.0.0.1:{infra.free_port()}/hook")
    up, _, _ = _setup(session, receiver.url)
    for _ in range(2):
        for subscription in (down, up):
            subscriptions.send_test_event(session, actor=ADMIN, subscription_id=subscription["id"])
    failing = _others(session, down["id"]) - {up["id"]}  # rows of other tests are not this test's
    delivery.run_lane(session, POLICY, failing, iter(range(50)))
    rows = session.scalars(select(Delivery).where(Delivery.subscription_id.in_([down["id"], up["id"]]))).all()
    attempts = {(row.subscription_id, row.status, row.attempts) for row in rows}
    assert down["id"] in failing
    assert sorted(a for s, _, a in attempts if s == down["id"]) == [0, 1]  # one tried, then skipped
    down_rows = [row for row in rows if row.subscription_id == down["id"]]
    assert sorted(row.attempts for row in down_rows) == [0] * (len(down_rows) - 1) + [1]
    assert [row.status for row in rows if row.subscription_id == up["id"]] == ["delivered"] * 3
    assert len(receiver.requests) == 3


def test_the_budget_of_a_pass_is_shared_by_its_lanes(session, receiver):
    created, _, _ = _setup(session, receiver.url)
    for _ in range(4):
        subscriptions.send_test_event(session, actor=ADMIN, subscription_id=created["id"])
    budget = iter(range(3))
    others = _others(session, created["id"])
    delivery.run_lane(session, POLICY, set(others), budget)
    delivery.run_lane(session, POLICY, set(others), budget)  # nothing left for a second lane
    assert len(receiver.requests) == 3
