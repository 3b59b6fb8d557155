"""The nameko face of the tickets service: entrypoints only, the logic is in the plain modules beside it."""

from __future__ import annotations

import os

from comptoir_common.events import Event
from comptoir_common.nameko_ext import BlobStorage, Database, event_handler, rpc
from nameko.dependency_providers import Config
from nameko.timer import timer

from comptoir_tickets import (
    configuration,
    email_intake,
    importing,
    listing,
    policy,
    readmodels,
    replay,
    tickets,
)
from comptoir_tickets.models import OutboxMessage, ProcessedEvent

# Tickets flagged per timer pass; the next pass takes the rest.
SLA_SCAN_BATCH = 200
# How often the SLA timer looks for tickets past their deadline (read at import: nameko timers are static).
SLA_SCAN_SECONDS = float(os.environ.get("TICKETS_SLA_SCAN_SECONDS", "30"))


class TicketsService:
    name = "tickets"

    db = Database(outbox_model=OutboxMessage, inbox_model=ProcessedEvent)
    config = Config()

    blobs = BlobStorage()

    def _full(self, actor: dict, ticket) -> dict:
        session = self.db.session
        session.flush()
        session.expire(ticket, ["messages"])
        # One query for the messages and one for their attachments (not one per message).
        ticket = tickets.get_ticket(session, actor=actor, ticket_id=ticket.id)
        return tickets.ticket_to_dict(session, ticket, actor=actor, with_messages=True)

    # --- tickets ---------------------------------------------------------------------------------------------

    @rpc
    def create_ticket(
        self,
        actor: dict,
        title: str,
        message: str,
        source: str = "web",
        type: str | None = None,
        priority: str | None = None,
        customer_id: str | None = None,
        internal_note: str | None = None,
        assignees: list | None = None,
        attachments: list | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        ticket = tickets.create_ticket(
            self.db.session,
            actor=actor,
            title=title,
            message=message,
            source=source,
            type=type,
            priority=priority,
            customer_id=customer_id,
            internal_note=internal_note,
            assignees=assignees,
            attachments=attachments,
            blobs=self.blobs,
            idempotency_key=idempotency_key,
        )
        # The reply is built from what was just written (or, for a repeated key, what was read): no second read.
        return tickets.ticket_to_dict(self.db.session, ticket, actor=actor, with_messages=True)

    @rpc
    def get_ticket(self, actor: dict, ticket_id: str) -> dict:
        ticket = tickets.get_ticket(self.db.session, actor=actor, ticket_id=ticket_id)
        return tickets.ticket_to_dict(self.db.session, ticket, actor=actor, with_messages=True)

    @rpc
    def update_ticket(self, actor: dict, ticket_id: str, version: int, changes: dict) -> dict:
        ticket = tickets.update_ticket(
            self.db.session, actor=actor, ticket_id=ticket_id, version=version, changes=changes
        )
        return self._full(actor, ticket)

    @rpc
    def take_ticket(self, actor: dict, ticket_id: str) -> dict:
        ticket = tickets.take_ticket(self.db.session, actor=actor, ticket_id=ticket_id)
        return self._full(actor, ticket)

    @rpc
    def add_message(
        self,
        actor: dict,
        ticket_id: str,
        body: str,
        internal: bool = False,
        attachments: list | None = None,
        source: str = "web",
    ) -> dict:
        message = tickets.add_message(
            self.db.session,
            actor=actor,
            ticket_id=ticket_id,
            body=body,
            internal=internal,
            attachments=attachments,
            source=source,
            blobs=self.blobs,
        )
        return tickets.message_to_dict(message)

    @rpc
    def get_history(self, actor: dict, ticket_id: str) -> list:
        return tickets.history(self.db.session, actor=actor, ticket_id=ticket_id)

    @rpc
    def get_attachment(self, actor: dict, ticket_id: str, attachment_id: str) -> dict:
        return tickets.get_attachment(
            self.db.session, actor=actor, ticket_id=ticket_id, attachment_id=attachment_id
        )

    @rpc
    def list_tickets(
        self,
        actor: dict,
        limit: int = 50,
        cursor: str | None = None,
        sort: str | None = None,
        filters: dict | None = None,
    ) -> dict:
        return listing.list_tickets(
            self.db.session, actor=actor, limit=limit, cursor=cursor, sort=sort, filters=filters
        )

    @rpc
    def dashboard(self, actor: dict) -> dict:
        return listing.dashboard(self.db.session, actor=actor)

    @rpc
    def visibility_scope(self, actor: dict) -> dict:
        """What the gateway needs to filter live events for one viewer."""
        scope = policy.scope(self.db.session, actor).to_dict()
        return scope | {"internal_hidden": not policy.can_see_internal_notes(actor)}

    @rpc
    def form_options(self, actor: dict, customer_search: bool = False) -> dict:
        """Statuses, types, priorities, canned responses, customers and agents a form may offer to ``actor``.

        ``customer_search``: the caller lets staff search the customer directory (crm_sync) instead of choosing
        from a list, so staff get no list (``customer_search`` true in the answer); others keep theirs."""
        session = self.db.session
        options = configuration.configuration_to_dict(session)
        staff = actor.get("role") in policy.STAFF_ROLES
        if not staff:
            options["canned_responses"] = []
            options.pop("calendar")
        options["customer_search"] = bool(customer_search) and staff
        options["customers"] = [] if options["customer_search"] else readmodels.list_customers(session, actor)
        options["agents"] = readmodels.list_staff(session) if staff else []
        options["create_fields"] = sorted(policy.CREATE_FIELDS.get(actor.get("role"), ()))
        return options

    # --- configuration (admins) ------------------------------------------------------------------------------

    @rpc
    def get_configuration(self, actor: dict) -> dict:
        configuration.require_admin(actor)
        return configuration.configuration_to_dict(self.db.session)

    @rpc
    def configure(self, actor: dict, resource: str, operation: str, **params) -> dict:
        """One admin change: ``resource`` in statuses/types/priorities/canned_responses/calendar/attachment_limit."""
        session = self.db.session
        operations = {
            ("statuses", "add"): configuration.add_status,
            ("statuses", "update"): configuration.update_status,
            ("statuses", "reorder"): configuration.reorder_statuses,
            ("statuses", "remove"): configuration.remove_status,
            ("types", "add"): configuration.add_type,
            ("types", "update"): configuration.update_type,
            ("types", "remove"): configuration.remove_type,
            ("priorities", "add"): configuration.add_priority,
            ("priorities", "update"): configuration.update_priority,
            ("priorities", "remove"): configuration.remove_priority,
            ("canned_responses", "add"): configuration.add_canned,
            ("canned_responses", "update"): configuration.update_canned,
            ("canned_responses", "remove"): configuration.remove_canned,
            ("calendar", "set"): configuration.set_calendar,
            ("attachment_limit", "set"): configuration.set_attachment_limit,
        }
        operation_fn = operations.get((resource, operation))
        configuration.require_admin(actor)
        if operation_fn is None:
            from comptoir_common.errors import NotFound

            raise NotFound("Ressource de configuration inconnue.")
        try:
            operation_fn(session, actor=actor, **params)
        except TypeError as exc:
            from comptoir_common.errors import InvalidInput

            raise InvalidInput("Paramètres de configuration invalides.") from exc
        session.flush()
        configuration.invalidate_cache()
        return configuration.configuration_to_dict(session)

    # --- import of an old helpdesk's tickets (admins) ---------------------------------------------------------

    @rpc
    def import_tickets(
        self, actor: dict, batch: list, hints: dict | None = None, dry_run: bool = False
    ) -> dict:
        """Import a batch of normalised tickets (comptoir_common.ticket_import), idempotent on the old number;
        ``dry_run``: what would happen, nothing written."""
        return importing.import_batch(
            self.db.session, actor=actor, batch=batch, hints=hints, dry_run=dry_run, blobs=self.blobs
        )

    @rpc
    def import_status(self, actor: dict) -> dict:
        return importing.import_status(self.db.session, actor=actor)

    # --- SLA -------------------------------------------------------------------------------------------------

    @timer(interval=SLA_SCAN_SECONDS, eager=False)
    def scan_sla_breaches(self) -> None:
        try:
            tickets.scan_sla_breaches(self.db.session, limit=SLA_SCAN_BATCH)
            self.db.commit()
        except Exception:
            self.db.rollback()
            raise

    @timer(interval=3600, eager=False)
    def purge_creation_keys(self) -> None:
        try:
            tickets.purge_creation_keys(self.db.session)
            self.db.commit()
        except Exception:
            self.db.rollback()
            raise

    # --- read models -----------------------------------------------------------------------------------------

    @event_handler("crm_sync", "customer.upserted")
    def on_customer_upserted(self, event: Event) -> None:
        readmodels.upsert_customer(self.db.session, event)

    @event_handler("crm_sync", "customer.deactivated")
    def on_customer_deactivated(self, event: Event) -> None:
        readmodels.deactivate_customer(self.db.session, event)

    @event_handler("auth", "user.created")
    def on_user_created(self, event: Event) -> None:
        readmodels.upsert_user(self.db.session, event)

    @event_handler("auth", "user.updated")
    def on_user_updated(self, event: Event) -> None:
        readmodels.upsert_user(self.db.session, event)

    @event_handler("auth", "user.deactivated")
    def on_user_deactivated(self, event: Event) -> None:
        readmodels.upsert_user(self.db.session, event, active=False)

    @event_handler("auth", "user.reactivated")
    def on_user_reactivated(self, event: Event) -> None:
        readmodels.upsert_user(self.db.session, event, active=True)

    @rpc
    def replay_events(self, after_seq: int = 0, limit: int = 500) -> dict:
        """The event history, page by page, for consumers rebuilding a projection (internal: not in the API)."""
        return replay.replay_events(self.db.session, after_seq=after_seq, limit=limit)

    # --- mail intake (issue 6): called by the mail-ingest service; see comptoir_tickets.email_intake ---------

    @rpc
    def ingest_email(self, message: dict) -> dict:
        return email_intake.ingest_email(self.db.session, mail=message)

    @rpc
    def ingest_emails(self, messages: list) -> list:
        return email_intake.ingest_emails(self.db.session, mails=messages)

    @rpc
    def email_messages(self, actor: dict, ticket_id: str) -> list:
        return email_intake.email_messages(self.db.session, actor=actor, ticket_id=ticket_id)

    @event_handler("notifier", "notification.failed")
    def on_notification_failed(self, event: Event) -> None:
        email_intake.record_notification_failure(self.db.session, event.data)

    @rpc
    def move_email_message(
        self,
        actor: dict,
        message_id: str,
        target_ticket_id: str | None = None,
        target_number: int | str | None = None,
    ) -> dict:
        return email_intake.move_email_message(
            self.db.session,
            actor=actor,
            message_id=message_id,
            target_ticket_id=target_ticket_id,
            target_number=target_number,
        )
