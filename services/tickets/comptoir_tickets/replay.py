"""Replay of the tickets' event history, for consumers that rebuild their projections (reports).

The outbox keeps every event the service ever published (the relay marks rows published, it never deletes them),
so it is also the history: pages of envelopes in outbox order, exactly as they were published.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from comptoir_tickets.models import OutboxMessage

MAX_REPLAY_PAGE = 2000


def replay_events(session: Session, *, after_seq: int = 0, limit: int = 500) -> dict[str, Any]:
    """Up to ``limit`` ticket events with an outbox sequence above ``after_seq``, oldest first.

    Returns ``{"events": [envelope, ...], "last_seq": <seq of the last one, or after_seq>, "more": bool}``; call
    again with ``after_seq=last_seq`` while ``more`` is true.
    """
    limit = max(1, min(int(limit), MAX_REPLAY_PAGE))
    after_seq = max(0, int(after_seq))
    rows = session.execute(
        select(OutboxMessage.seq, OutboxMessage.payload)
        .where(OutboxMessage.seq > after_seq, OutboxMessage.event_type.like("ticket.%"))
        .order_by(OutboxMessage.seq)
        .limit(limit)
    ).all()
    return {
        "events": [payload for _, payload in rows],
        "last_seq": rows[-1][0] if rows else after_seq,
        "more": len(rows) == limit,
    }
