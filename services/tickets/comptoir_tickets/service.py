"""The nameko face of the tickets service: entrypoints only, the logic is in :mod:`comptoir_tickets.tickets`."""

from __future__ import annotations

from comptoir_common.nameko_ext import Database, rpc

from comptoir_tickets import tickets
from comptoir_tickets.models import OutboxMessage, ProcessedEvent


class TicketsService:
    name = "tickets"

    db = Database(outbox_model=OutboxMessage, inbox_model=ProcessedEvent)

    @rpc
    def create_ticket(self, actor: dict, title: str, message: str, source: str = "web") -> dict:
        ticket = tickets.create_ticket(
            self.db.session, actor=actor, title=title, message=message, source=source
        )
        return tickets.ticket_to_dict(ticket, with_messages=True, actor=actor)

    @rpc
    def get_ticket(self, actor: dict, ticket_id: str) -> dict:
        ticket = tickets.get_ticket(self.db.session, actor=actor, ticket_id=ticket_id)
        return tickets.ticket_to_dict(ticket, with_messages=True, actor=actor)

    @rpc
    def list_tickets(self, actor: dict, limit: int = 50, cursor: str | None = None) -> dict:
        return tickets.list_tickets(self.db.session, actor=actor, limit=limit, cursor=cursor)
