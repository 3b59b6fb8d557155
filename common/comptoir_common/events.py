"""The event envelope every service publishes and every consumer reads.

An event is JSON on the topic exchange ``<service>.events`` with the event type as routing key::

    {"id": "<uuid>", "type": "ticket.created", "version": 1, "occurred_at": "2026-11-28T07:00:00+00:00",
     "actor": {"id": "<user id>" | null, "kind": "user" | "system"}, "data": {...}}

``docs/events.md`` is the catalogue of types and their schemas.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def exchange_name(service: str) -> str:
    return f"{service}.events"


def system_actor(name: str = "system") -> dict[str, Any]:
    return {"kind": "system", "id": None, "name": name}


def user_actor(user: dict[str, Any]) -> dict[str, Any]:
    """The public part of a caller's identity, as events carry it (no email: events may leave the system)."""
    return {"kind": "user", "id": user.get("id"), "role": user.get("role"), "name": user.get("name")}


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    actor: dict[str, Any]
    version: int = 1
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": self.actor,
            "data": self.data,
        }

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> Event:
        missing = {"id", "type", "version", "occurred_at", "actor", "data"} - set(envelope)
        if missing:
            raise ValueError(f"event envelope lacks {sorted(missing)}")
        return cls(
            id=envelope["id"],
            type=envelope["type"],
            version=int(envelope["version"]),
            occurred_at=datetime.fromisoformat(envelope["occurred_at"]),
            actor=envelope["actor"],
            data=envelope["data"],
        )
