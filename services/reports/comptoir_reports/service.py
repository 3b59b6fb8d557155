"""The nameko face of the reports service: entrypoints only, the logic is in the plain modules."""

from __future__ import annotations

import logging

from comptoir_common.events import Event
from comptoir_common.nameko_ext import Database, event_handler, rpc
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from nameko.timer import timer

from comptoir_reports import directory, export, projection, rebuild, reports
from comptoir_reports.models import ProcessedEvent

log = logging.getLogger(__name__)


class ReportsService:
    name = "reports"

    db = Database(inbox_model=ProcessedEvent)
    tickets = RpcProxy("tickets")
    config = Config()

    # --- ticket events: every one feeds the projection -------------------------------------------------------

    @event_handler("tickets", "ticket.created")
    def on_ticket_created(self, event: Event) -> None:
        projection.apply_event(self.db.session, event)

    @event_handler("tickets", "ticket.updated")
    def on_ticket_updated(self, event: Event) -> None:
        projection.apply_event(self.db.session, event)

    @event_handler("tickets", "ticket.status_changed")
    def on_ticket_status_changed(self, event: Event) -> None:
        projection.apply_event(self.db.session, event)

    @event_handler("tickets", "ticket.message_added")
    def on_ticket_message_added(self, event: Event) -> None:
        projection.apply_event(self.db.session, event)

    @event_handler("tickets", "ticket.assigned")
    def on_ticket_assigned(self, event: Event) -> None:
        projection.apply_event(self.db.session, event)

    @event_handler("tickets", "ticket.customer_attached")
    def on_ticket_customer_attached(self, event: Event) -> None:
        projection.apply_event(self.db.session, event)

    @event_handler("tickets", "ticket.closed")
    def on_ticket_closed(self, event: Event) -> None:
        projection.apply_event(self.db.session, event)

    @event_handler("tickets", "ticket.reopened")
    def on_ticket_reopened(self, event: Event) -> None:
        projection.apply_event(self.db.session, event)

    @event_handler("tickets", "ticket.batch_imported")
    def on_ticket_batch_imported(self, event: Event) -> None:
        projection.apply_events(self.db.session, [event])

    @event_handler("tickets", "ticket.sla_breached")
    def on_ticket_sla_breached(self, event: Event) -> None:
        projection.apply_event(self.db.session, event)

    # --- read models ------------------------------------------------------------------------------------------

    @event_handler("crm_sync", "customer.upserted")
    def on_customer_upserted(self, event: Event) -> None:
        directory.upsert_customer(self.db.session, event.data, event.occurred_at)

    @event_handler("crm_sync", "customer.deactivated")
    def on_customer_deactivated(self, event: Event) -> None:
        directory.deactivate_customer(self.db.session, event.data, event.occurred_at)

    @event_handler("auth", "user.created")
    def on_user_created(self, event: Event) -> None:
        directory.upsert_user(self.db.session, event.data)

    @event_handler("auth", "user.updated")
    def on_user_updated(self, event: Event) -> None:
        directory.upsert_user(self.db.session, event.data)

    @event_handler("auth", "user.deactivated")
    def on_user_deactivated(self, event: Event) -> None:
        directory.upsert_user(self.db.session, event.data)

    @event_handler("auth", "user.reactivated")
    def on_user_reactivated(self, event: Event) -> None:
        directory.upsert_user(self.db.session, event.data)

    # --- queries ----------------------------------------------------------------------------------------------

    @rpc
    def list_reports(self, actor: dict) -> list[dict]:
        return reports.list_reports(self.db.session, actor=actor)

    @rpc
    def get_report(self, actor: dict, report: str, filters: dict | None = None) -> dict:
        return reports.get_report(self.db.session, actor=actor, report=report, filters=filters)

    @rpc
    def export_report(
        self, actor: dict, report: str, filters: dict | None = None, separator: str = ","
    ) -> dict:
        built = reports.get_report(self.db.session, actor=actor, report=report, filters=filters)
        return export.to_csv(built, separator)

    @rpc
    def report_page(
        self, actor: dict, report: str, filters: dict | None = None, customer_search: bool = False
    ) -> dict:
        """What the reports page needs in one call: the catalogue, the filter options and the report
        (``customer_search``: see ``reports.filter_options``)."""
        session = self.db.session
        return {
            "reports": reports.list_reports(session, actor=actor),
            "options": reports.filter_options(session, actor=actor, customer_search=customer_search),
            "report": reports.get_report(session, actor=actor, report=report, filters=filters),
        }

    @rpc
    def set_client_summary(self, actor: dict, customer_id: str, enabled: bool) -> dict:
        return directory.set_client_summary(
            self.db.session, actor=actor, customer_id=customer_id, enabled=enabled
        )

    # --- rebuild ----------------------------------------------------------------------------------------------

    @rpc
    def request_rebuild(self, actor: dict) -> dict:
        return rebuild.request_rebuild(self.db.session, actor=actor)

    @rpc
    def rebuild_status(self, actor: dict) -> dict:
        return rebuild.rebuild_status(self.db.session, actor=actor)

    @timer(interval=2)
    def run_requested_rebuild(self) -> None:
        session = self.db.session
        run = rebuild.claim_run(session)
        self.db.commit()
        if run is None:
            return
        log.info("rebuild started", extra={"rebuild_id": run.id})
        try:
            rebuild.run(
                session,
                run,
                lambda after_seq, limit: self.tickets.replay_events(after_seq=after_seq, limit=limit),
                self.db.commit,
                page_size=int(self.config.get("REPLAY_PAGE_SIZE", 500)),
            )
            log.info("rebuild finished", extra={"rebuild_id": run.id, "events": run.events_replayed})
        except Exception as exc:
            log.exception("rebuild failed", extra={"rebuild_id": run.id})
            self.db.rollback()
            rebuild.mark_failed(session, run.id, exc)
            self.db.commit()
