"""Ticket events as the tickets service publishes them (docs/events.md), for tests of their consumers.

``TicketStory`` keeps a ticket's state and emits one event per action, each carrying the full ``data.ticket``
snapshot, at the moments the test chooses::

    story = TicketStory(created_at=paris(2026, 11, 23, 9), requester=client, customer_id=alpha)
    story.assign(agent, at=paris(2026, 11, 23, 9, 10))
    story.reply(agent, at=paris(2026, 11, 23, 9, 30))
    story.close(agent, at=paris(2026, 11, 23, 11))
    story.events  # [Event, ...]
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any

from comptoir_common.events import Event

STATUS_CATEGORIES = {"new": "new", "open": "open", "pending": "pending", "closed": "closed"}
STATUS_LABELS = {"new": "Non traité", "open": "En cours", "pending": "En attente client", "closed": "Clôturé"}
_numbers = itertools.count(1000)


def person(name: str, role: str, customer_id: str | None = None, email: str | None = None) -> dict[str, Any]:
    """An actor dict as the gateway passes it."""
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "role": role,
        "customer_id": customer_id,
        "email": email or f"{name.lower().replace(' ', '.')}@example.test",
    }


def _actor(who: dict[str, Any] | None) -> dict[str, Any]:
    if who is None:
        return {"kind": "system", "id": None, "name": "system"}
    return {"kind": "user", "id": who["id"], "role": who["role"], "name": who["name"]}


class TicketStory:
    """One ticket's life as a list of events."""

    def __init__(
        self,
        *,
        created_at: datetime,
        requester: dict[str, Any] | None = None,
        requester_email: str | None = None,
        customer_id: str | None = None,
        type: str | None = None,
        priority: str | None = None,
        resolution_due_at: datetime | None = None,
        title: str = "Demande de test",
        source: str = "web",
    ):
        self.events: list[Event] = []
        self.ticket: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "number": next(_numbers),
            "title": title,
            "status": "new",
            "status_label": STATUS_LABELS["new"],
            "status_category": "new",
            "customer_id": customer_id,
            "requester": {
                "id": requester["id"] if requester else None,
                "email": requester["email"] if requester else requester_email,
                "name": requester["name"] if requester else None,
            },
            "type": type,
            "priority": priority,
            "assignees": [],
            "source": source,
            "created_at": created_at.isoformat(),
            "updated_at": created_at.isoformat(),
            "resolution_due_at": resolution_due_at.isoformat() if resolution_due_at else None,
        }
        self._emit(
            "ticket.created", requester, created_at, message=self._message(requester, created_at, False)
        )

    @property
    def id(self) -> str:
        return self.ticket["id"]

    def _message(self, author: dict[str, Any] | None, at: datetime, internal: bool) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "author": {
                "id": author["id"] if author else None,
                "name": author["name"] if author else None,
                "role": author["role"] if author else None,
            },
            "body": "Texte du message",
            "internal": internal,
            "attachments": [],
            "created_at": at.isoformat(),
        }

    def _emit(self, event_type: str, who: dict[str, Any] | None, at: datetime, **extra: Any) -> Event:
        self.ticket["updated_at"] = at.isoformat()
        event = Event(
            type=event_type,
            actor=_actor(who),
            occurred_at=at,
            data={"ticket": dict(self.ticket, requester=dict(self.ticket["requester"])), **extra},
        )
        self.events.append(event)
        return event

    def assign(self, *agents: dict[str, Any], by: dict[str, Any] | None = None, at: datetime) -> TicketStory:
        self.ticket["assignees"] = [{"id": agent["id"], "name": agent["name"]} for agent in agents]
        self._emit("ticket.assigned", by or (agents[0] if agents else None), at)
        return self

    def reply(self, author: dict[str, Any], *, at: datetime, internal: bool = False) -> TicketStory:
        self._emit("ticket.message_added", author, at, message=self._message(author, at, internal))
        return self

    def set_status(self, status: str, by: dict[str, Any], *, at: datetime) -> TicketStory:
        old = self.ticket["status"]
        self.ticket["status"] = status
        self.ticket["status_label"] = STATUS_LABELS[status]
        self.ticket["status_category"] = STATUS_CATEGORIES[status]
        self._emit(
            "ticket.status_changed",
            by,
            at,
            old_status=old,
            new_status=status,
            old_category=STATUS_CATEGORIES[old],
            new_category=STATUS_CATEGORIES[status],
        )
        if status == "closed":
            self._emit("ticket.closed", by, at)
        elif STATUS_CATEGORIES[old] == "closed":
            self._emit("ticket.reopened", by, at)
        return self

    def close(self, by: dict[str, Any], *, at: datetime) -> TicketStory:
        return self.set_status("closed", by, at=at)

    def reopen(self, by: dict[str, Any], *, at: datetime) -> TicketStory:
        return self.set_status("open", by, at=at)

    def attach_customer(self, customer_id: str, by: dict[str, Any], *, at: datetime) -> TicketStory:
        old = self.ticket["customer_id"]
        self.ticket["customer_id"] = customer_id
        self._emit("ticket.customer_attached", by, at, old_customer_id=old, customer_id=customer_id)
        return self

    def update(self, by: dict[str, Any], *, at: datetime, **changes: Any) -> TicketStory:
        diff = {key: {"old": self.ticket.get(key), "new": value} for key, value in changes.items()}
        self.ticket.update(changes)
        self._emit("ticket.updated", by, at, changes=diff)
        return self

    def breach_sla(self, *, at: datetime) -> TicketStory:
        self._emit("ticket.sla_breached", None, at)
        return self
