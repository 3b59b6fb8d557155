"""The tickets' event history replayed page by page from the outbox, for projections rebuilt from scratch."""

from __future__ import annotations

from comptoir_common.db import utcnow
from comptoir_tickets import replay, tickets
from comptoir_tickets.models import OutboxMessage


def test_replay_pages_through_every_ticket_event_in_publication_order(session):
    actor = {
        "id": "00000000-0000-4000-8000-0000000000a1",
        "role": "agent",
        "name": "Agent",
        "email": "a@x.test",
    }
    created = [
        tickets.create_ticket(session, actor=actor, title=f"Ticket {i}", message="Bonjour") for i in range(5)
    ]
    # Published rows stay in the outbox: they are the history too.
    for row in session.query(OutboxMessage).all():
        row.published_at = utcnow()
    session.add(
        OutboxMessage(event_id="e-other", event_type="config.changed", payload={}, created_at=utcnow())
    )
    session.flush()

    seen, after_seq, pages = [], 0, 0
    while True:
        page = replay.replay_events(session, after_seq=after_seq, limit=2)
        pages += 1
        seen += page["events"]
        after_seq = page["last_seq"]
        if not page["more"]:
            break
    ours = [envelope for envelope in seen if envelope["data"].get("title", "").startswith("Ticket ")]
    assert [envelope["data"]["id"] for envelope in ours][-5:] == [ticket.id for ticket in created]
    assert all(envelope["type"].startswith("ticket.") for envelope in seen)
    assert pages >= 3
    assert replay.replay_events(session, after_seq=after_seq, limit=2) == {
        "events": [],
        "last_seq": after_seq,
        "more": False,
    }
