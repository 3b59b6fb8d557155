"""The nameko face of the crm_sync service: entrypoints only; the logic is in :mod:`comptoir_crm_sync.directory`,
:mod:`comptoir_crm_sync.sync` and :mod:`comptoir_crm_sync.quadra`."""

from __future__ import annotations

import logging
import threading

from comptoir_common.db import make_engine, make_session_factory
from comptoir_common.metrics import record_pass
from comptoir_common.nameko_ext import Database, event_handler, rpc
from nameko.extensions import DependencyProvider
from nameko.timer import timer

from comptoir_crm_sync import directory, quadra, sync
from comptoir_crm_sync.models import OutboxMessage, ProcessedEvent
from comptoir_crm_sync.settings import CrmSyncSettings

log = logging.getLogger(__name__)
SETTINGS = CrmSyncSettings()


class FileMakerSyncRunner(DependencyProvider):
    """Holds the one FileMaker client of this process (its session is reused across passes) and runs one pass at a
    time here; the lease in ``sync_state`` makes it one at a time across instances too."""

    def setup(self) -> None:
        self.settings = CrmSyncSettings()
        config = self.container.config
        self.engine = make_engine(config["DATABASE_URL"], pool_size=2)
        self.session_factory = make_session_factory(self.engine)
        self._busy = threading.Lock()
        self._sync: sync.FileMakerSync | None = None

    def tick(self) -> sync.SyncReport | None:
        if not self.settings.filemaker_url:
            return None
        if not self._busy.acquire(blocking=False):
            return None
        try:
            if self._sync is None:
                self._sync = sync.FileMakerSync(self.session_factory, self.settings)
            return self._sync.run()
        finally:
            self._busy.release()

    def stop(self) -> None:
        if self._sync is not None:
            self._sync.client.close()
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self


class CrmSyncService:
    name = "crm_sync"

    db = Database(outbox_model=OutboxMessage, inbox_model=ProcessedEvent)
    filemaker = FileMakerSyncRunner()

    # ---- FileMaker sync: an incremental pass every ``CRM_SYNC_SYNC_INTERVAL`` seconds, full ones when due

    @timer(interval=SETTINGS.sync_interval)
    def sync_filemaker(self) -> None:
        report = self.filemaker.tick()
        if report is not None and not report.skipped:
            record_pass("filemaker", report.kind, report.ok)  # alert ComptoirFileMakerSyncFailing
            self.db._provider.wake_relay()

    @rpc
    def sync_status(self, actor: dict) -> dict:
        return sync.sync_status(self.db.session, actor=actor, settings=self.filemaker.settings)

    @rpc
    def request_sync(self, actor: dict, full: bool = False) -> dict:
        return sync.request_sync(self.db.session, actor=actor, full=full)

    # ---- lookups for other services (no actor: service-to-service)

    @rpc
    def get_customer(self, customer_id: str) -> dict:
        return directory.get_customer(self.db.session, customer_id)

    @rpc
    def find_by_email(self, email: str) -> dict | None:
        return directory.find_by_email(self.db.session, email)

    @rpc
    def find_by_emails(self, emails: list) -> dict:
        """``{address: {contact, customer}}`` for up to 1,000 addresses (an import batch's requesters)."""
        return directory.find_by_emails(self.db.session, emails)

    @rpc
    def republish_all(self) -> dict:
        return directory.republish_all(self.db.session)

    # ---- the directory, for people (the actor's rights are checked here)

    @rpc
    def list_customers(
        self,
        actor: dict,
        search: str | None = None,
        source: str | None = None,
        active: bool | None = None,
        sales_rep_id: str | None = None,
        parent_customer_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict:
        return directory.list_customers(
            self.db.session,
            actor=actor,
            search=search,
            source=source,
            active=active,
            sales_rep_id=sales_rep_id,
            parent_customer_id=parent_customer_id,
            limit=limit,
            offset=offset,
        )

    @rpc
    def search_customers(self, actor: dict, query: str = "", limit: int = directory.PICKER_SIZE) -> list:
        """A customer picker's suggestions (the web pages' search-as-you-type)."""
        return directory.search_customers(self.db.session, actor=actor, query=query, limit=limit)

    @rpc
    def show_customer(self, actor: dict, customer_id: str) -> dict:
        return directory.show_customer(self.db.session, actor=actor, customer_id=customer_id)

    @rpc
    def create_customer(self, actor: dict, customer: dict) -> dict:
        created = directory.create_customer(self.db.session, actor=actor, payload=customer)
        return directory.customer_details(created)

    @rpc
    def update_customer(self, actor: dict, customer_id: str, customer: dict) -> dict:
        updated = directory.update_customer(
            self.db.session, actor=actor, customer_id=customer_id, payload=customer
        )
        return directory.customer_details(updated)

    @rpc
    def set_customer_active(self, actor: dict, customer_id: str, active: bool) -> dict:
        customer = directory.set_active(self.db.session, actor=actor, customer_id=customer_id, active=active)
        return directory.customer_details(customer)

    @rpc
    def assign_sales_rep(self, actor: dict, customer_id: str, sales_rep_id: str | None) -> dict:
        customer = directory.assign_sales_rep(
            self.db.session, actor=actor, customer_id=customer_id, sales_rep_id=sales_rep_id
        )
        return directory.customer_details(customer)

    @rpc
    def list_sales_reps(self, actor: dict) -> list:
        return directory.list_sales_reps(self.db.session, actor=actor)

    # ---- Quadra

    @rpc
    def import_quadra(self, actor: dict, blob_key: str, filename: str = "") -> dict:
        """Import an uploaded export (the gateway put it in the blob store); the summary of what changed."""
        return quadra.import_blob(
            self.db.session,
            actor=actor,
            blob_key=blob_key,
            filename=filename,
            settings=self.filemaker.settings,
        )

    # ---- the users read model (auth's events)

    @event_handler("auth", "user.created")
    def on_user_created(self, event) -> None:
        directory.apply_user(self.db.session, event.data)

    @event_handler("auth", "user.updated")
    def on_user_updated(self, event) -> None:
        directory.apply_user(self.db.session, event.data)

    @event_handler("auth", "user.deactivated")
    def on_user_deactivated(self, event) -> None:
        directory.apply_user(self.db.session, event.data | {"active": False})

    @event_handler("auth", "user.reactivated")
    def on_user_reactivated(self, event) -> None:
        directory.apply_user(self.db.session, event.data | {"active": True})
