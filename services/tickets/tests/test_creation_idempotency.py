"""Idempotent ticket creation: a repeated key (retry, redelivered RPC) returns the first ticket, per creator."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from comptoir_common.db import utcnow
from comptoir_common.errors import Conflict, InvalidInput
from comptoir_tickets import tickets
from comptoir_tickets.models import CreationKey, OutboxMessage, Ticket, TicketCount
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session


def _created_events(session, ticket_ids) -> int:
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "ticket.created")).all()
    return sum(1 for r in rows if r.payload["data"]["ticket"]["id"] in ticket_ids)


def test_same_key_same_person_returns_the_first_ticket_and_creates_nothing(session, world):
    customer = world.customer("Boulangerie Dupont")
    client = world.person("client", "Claire", customer)
    first = tickets.create_ticket(
        session, actor=client, title="Ligne coupée", message="m", idempotency_key="k-1"
    )
    assert first.just_created
    session.flush()
    counts_before = session.scalar(
        select(TicketCount.count).where(TicketCount.customer_id == customer, TicketCount.category == "new")
    )
    again = tickets.create_ticket(
        session, actor=client, title="Ligne coupée", message="m", idempotency_key="k-1"
    )
    assert again.id == first.id and not again.just_created
    assert session.scalar(select(func.count()).select_from(Ticket).where(Ticket.customer_id == customer)) == 1
    assert _created_events(session, {first.id}) == 1
    assert (
        counts_before == 1
        and session.scalar(
            select(TicketCount.count).where(
                TicketCount.customer_id == customer, TicketCount.category == "new"
            )
        )
        == 1
    )
    # The replayed answer is the whole ticket, with its first message.
    assert [m.body for m in again.messages] == ["m"]


def test_key_of_another_person_is_not_shared(session, world):
    customer = world.customer("A")
    claire = world.person("client", "Claire", customer)
    paul = world.person("client", "Paul", customer)
    mine = tickets.create_ticket(session, actor=claire, title="t", message="m", idempotency_key="same")
    theirs = tickets.create_ticket(session, actor=paul, title="t", message="m", idempotency_key="same")
    assert mine.id != theirs.id and theirs.just_created
    assert theirs.requester_id == paul["id"]


def test_same_key_with_another_request_is_a_conflict(session, world):
    client = world.person("client", customer_id=world.customer("A"))
    tickets.create_ticket(session, actor=client, title="Premier", message="m", idempotency_key="k")
    with pytest.raises(Conflict):
        tickets.create_ticket(session, actor=client, title="Autre chose", message="m", idempotency_key="k")


def test_key_must_be_a_short_string(session, world):
    client = world.person("client", customer_id=world.customer("A"))
    for bad in ("", "   ", "x" * 201, 12):
        with pytest.raises(InvalidInput):
            tickets.create_ticket(session, actor=client, title="t", message="m", idempotency_key=bad)


def test_old_keys_are_purged(session, world):
    client = world.person("client", customer_id=world.customer("A"))
    ticket = tickets.create_ticket(session, actor=client, title="t", message="m", idempotency_key="old")
    session.flush()
    session.execute(
        CreationKey.__table__.update()
        .where(CreationKey.key == "old")
        .values(created_at=utcnow() - timedelta(days=2))
    )
    assert tickets.purge_creation_keys(session) >= 1
    assert session.get(CreationKey, (client["id"], "old")) is None
    assert session.get(Ticket, ticket.id) is not None


def test_concurrent_calls_with_one_key_make_one_ticket(engine):
    """Two deliveries of the same request at once (a redelivered RPC while the first still runs): the second
    waits for the first transaction and answers its ticket."""
    customer_id = str(uuid.uuid4())
    client = {
        "id": str(uuid.uuid4()),
        "role": "client",
        "customer_id": customer_id,
        "name": "C",
        "email": None,
    }
    first = Session(engine)
    results: dict[str, object] = {}
    try:
        created = tickets.create_ticket(first, actor=client, title="t", message="m", idempotency_key="k")

        def second_delivery() -> None:
            with Session(engine) as second:
                ticket = tickets.create_ticket(
                    second, actor=client, title="t", message="m", idempotency_key="k"
                )
                results["id"], results["created"] = ticket.id, ticket.just_created
                second.commit()

        thread = threading.Thread(target=second_delivery)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the second call must wait for the first transaction"
        first.commit()
        thread.join(30)
        assert results == {"id": created.id, "created": False}
        with Session(engine) as check:
            assert (
                check.scalar(
                    select(func.count()).select_from(Ticket).where(Ticket.customer_id == customer_id)
                )
                == 1
            )
    finally:
        first.rollback()
        with Session(engine) as cleanup:
            ids = list(cleanup.scalars(select(Ticket.id).where(Ticket.customer_id == customer_id)))
            cleanup.execute(delete(Ticket).where(Ticket.id.in_(ids)))
            cleanup.execute(delete(CreationKey).where(CreationKey.actor_id == client["id"]))
            cleanup.execute(delete(TicketCount).where(TicketCount.customer_id == customer_id))
            cleanup.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.payload["data"]["ticket"]["id"].as_string().in_(ids)
                )
            )
            cleanup.commit()
        first.close()


def test_first_call_rolled_back_lets_the_retry_create(engine):
    customer_id = str(uuid.uuid4())
    client = {
        "id": str(uuid.uuid4()),
        "role": "client",
        "customer_id": customer_id,
        "name": "C",
        "email": None,
    }
    with Session(engine) as failed:
        tickets.create_ticket(failed, actor=client, title="t", message="m", idempotency_key="k")
        failed.rollback()
    with Session(engine) as retry:
        ticket = tickets.create_ticket(retry, actor=client, title="t", message="m", idempotency_key="k")
        assert ticket.just_created
        retry.rollback()
