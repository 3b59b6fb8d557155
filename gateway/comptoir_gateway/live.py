"""Live updates for pages: the gateway's subscription to ``tickets.events`` fanned out to server-sent events.

Each browser connection registers with its viewer's visibility scope (asked once from the tickets service, which
owns the rule, and refreshed every minute); an event reaches a connection only if the tickets policy says that viewer
may see the ticket. What is sent is only the event type and ticket id: the page then reloads what it shows through
the ordinary, policy-checked API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from comptoir_tickets.policy import can_see_event

log = logging.getLogger(__name__)

TICKET_EVENTS = [
    "ticket.created",
    "ticket.updated",
    "ticket.status_changed",
    "ticket.message_added",
    "ticket.assigned",
    "ticket.customer_attached",
    "ticket.closed",
    "ticket.reopened",
    "ticket.sla_breached",
]
KEEPALIVE_SECONDS = 15.0
SCOPE_REFRESH_SECONDS = 60.0
QUEUE_SIZE = 100


class Subscriber:
    def __init__(self, scope: dict[str, Any]):
        self.scope = scope
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_SIZE)


class LiveHub:
    def __init__(self):
        self.subscribers: set[Subscriber] = set()

    async def start(self, client) -> None:
        await client.subscribe("tickets", TICKET_EVENTS, self.dispatch)

    async def dispatch(self, envelope: dict[str, Any]) -> None:
        data = envelope.get("data") or {}
        ticket = data.get("ticket") or data
        notice = {"type": envelope.get("type"), "ticket_id": ticket.get("id")}
        for subscriber in list(self.subscribers):
            if can_see_event(subscriber.scope, envelope):
                try:
                    subscriber.queue.put_nowait(notice)
                except asyncio.QueueFull:
                    pass  # a slow page misses a notice; its one-minute refresh catches up

    async def stream(self, services, actor: dict[str, Any]) -> AsyncIterator[str]:
        """Server-sent events for one viewer until the connection closes."""
        scope = await services.call("tickets", "visibility_scope", actor=actor)
        subscriber = Subscriber(scope)
        self.subscribers.add(subscriber)
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        try:
            yield "retry: 5000\n\n"
            while True:
                try:
                    notice = await asyncio.wait_for(subscriber.queue.get(), KEEPALIVE_SECONDS)
                    yield f"event: ticket\ndata: {json.dumps(notice)}\n\n"
                except TimeoutError:
                    yield ": keepalive\n\n"
                if loop.time() - refreshed > SCOPE_REFRESH_SECONDS:
                    # A sales rep may have gained or lost customers since the page opened.
                    subscriber.scope = await services.call("tickets", "visibility_scope", actor=actor)
                    refreshed = loop.time()
        finally:
            self.subscribers.discard(subscriber)
