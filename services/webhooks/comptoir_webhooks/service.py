"""The nameko face of the webhooks service: one queue per source exchange, bound to the event types the active
subscriptions want (``bindings.py``), a timer sends the due deliveries, admins manage subscriptions over RPC."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import eventlet
from comptoir_common.events import Event
from comptoir_common.nameko_ext import Database, event_handler, rpc
from nameko.dependency_providers import Config
from nameko.timer import timer

from comptoir_webhooks import bindings, delivery, subscriptions
from comptoir_webhooks.bindings import ALL_EVENTS
from comptoir_webhooks.models import ProcessedEvent

log = logging.getLogger(__name__)

# The bindings are reconciled after each change of a subscription, and this often besides: other instances' changes
# and a reconcile that failed (broker unreachable) converge within it.
RECONCILE_SECONDS = 30
# How long a subscription change waits for its bindings before answering (well under the gateway's RPC timeout).
REBIND_WAIT_SECONDS = 3.0
# A timer tick keeps starting passes while each one finds a full batch due, for this long at most.
PASSES_SECONDS = 5.0


class WebhooksService:
    name = "webhooks"

    db = Database(inbox_model=ProcessedEvent)
    config = Config()

    @property
    def _settings(self) -> dict:
        return self.config.get("WEBHOOKS") or {}

    @property
    def _policy(self) -> delivery.DeliveryPolicy:
        return delivery.DeliveryPolicy.from_config(self._settings)

    # --- events in: one delivery per matching subscription ---------------------------------------------------
    # The queues are named after "#" but declared unbound: bindings.reconcile binds them.

    @timer(interval=RECONCILE_SECONDS, eager=True)
    def reconcile_bindings(self) -> None:
        bindings.reconcile(self.db.new_session, self.config["AMQP_URI"])

    def _commit_and_rebind(self) -> None:
        """Commit the subscription change, then bind the queues to what it wants — waiting REBIND_WAIT_SECONDS at
        most: on a slow broker the answer must not time out after the commit (the new subscription's secret is shown
        only in that answer, and a retry would create a second subscription); the reconcile goes on meanwhile and
        the timer retries a failure."""
        self.db.commit()
        new_session, amqp_uri = self.db.new_session, self.config["AMQP_URI"]

        def rebind() -> None:
            try:
                bindings.reconcile(new_session, amqp_uri)
            except Exception:
                log.warning(
                    "reconciling the webhooks bindings failed; retried within %ss",
                    RECONCILE_SECONDS,
                    exc_info=True,
                )

        rebinding = eventlet.spawn(rebind)
        with eventlet.Timeout(REBIND_WAIT_SECONDS, False):
            rebinding.wait()

    def _queue(self, event: Event) -> None:
        subscriptions.queue_event(self.db.session, event.to_envelope())

    @event_handler("tickets", ALL_EVENTS, declare_binding=False)
    def on_tickets_event(self, event: Event) -> None:
        self._queue(event)

    @event_handler("auth", ALL_EVENTS, declare_binding=False)
    def on_auth_event(self, event: Event) -> None:
        self._queue(event)

    @event_handler("crm_sync", ALL_EVENTS, declare_binding=False)
    def on_crm_sync_event(self, event: Event) -> None:
        self._queue(event)

    @event_handler("mail_ingest", ALL_EVENTS, declare_binding=False)
    def on_mail_ingest_event(self, event: Event) -> None:
        self._queue(event)

    @event_handler("notifier", ALL_EVENTS, declare_binding=False)
    def on_notifier_event(self, event: Event) -> None:
        self._queue(event)

    @event_handler("wiki", ALL_EVENTS, declare_binding=False)
    def on_wiki_event(self, event: Event) -> None:
        self._queue(event)

    # --- delivery --------------------------------------------------------------------------------------------

    @timer(interval=1, eager=True)
    def deliver_due(self) -> None:
        """Passes of up to ``batch`` due deliveries, each sent by ``concurrency`` lanes (green threads) with their
        own session, so one slow receiver does not make the others wait. A pass that used its whole batch is
        followed at once by another (a backlog drains at full speed), for up to PASSES_SECONDS; then the timer
        yields, so that a stop request is not starved."""
        policy = self._policy
        lanes = max(1, int(self._settings.get("concurrency", 4)))
        if self.db.session.get_bind().dialect.name == "sqlite":
            lanes = 1  # no row locks to share the work (a local run)
        batch = int(self._settings.get("batch", 50))
        failing: set[str] = set()
        sessions = [self.db.new_session() for _ in range(lanes)]
        errors = []
        started = time.monotonic()
        try:
            while not errors:
                budget = iter(range(batch))
                threads = [eventlet.spawn(delivery.run_lane, s, policy, failing, budget) for s in sessions]
                for thread in threads:
                    try:
                        thread.wait()
                    except Exception as exc:  # the other lanes finish first; the pass is retried next second
                        errors.append(exc)
                if next(budget, None) is not None or time.monotonic() - started > PASSES_SECONDS:
                    break  # nothing more due now, or time to yield
        finally:
            for session in sessions:
                session.rollback()
                session.close()
        delivery.measure_backlog(self.db.session)
        self.db.commit()
        if errors:
            raise errors[0]

    @timer(interval=3600)
    def prune_log(self) -> None:
        days = float(self._settings.get("retention_days", 30.0))
        if days > 0:
            subscriptions.prune_deliveries(self.db.session, older_than=timedelta(days=days))
            self.db.commit()

    # --- admins ----------------------------------------------------------------------------------------------

    @rpc
    def event_types(self, actor: dict) -> list:
        subscriptions.require_admin(actor)
        return subscriptions.catalogue_types()

    @rpc
    def list_subscriptions(self, actor: dict) -> list:
        return subscriptions.list_subscriptions(self.db.session, actor=actor)

    @rpc
    def get_subscription(self, actor: dict, subscription_id: str) -> dict:
        return subscriptions.get_subscription(self.db.session, actor=actor, subscription_id=subscription_id)

    @rpc
    def create_subscription(self, actor: dict, fields: dict) -> dict:
        created = subscriptions.create_subscription(
            self.db.session, actor=actor, fields=fields or {}, rules=self._policy.rules
        )
        self._commit_and_rebind()
        return created

    @rpc
    def update_subscription(self, actor: dict, subscription_id: str, fields: dict) -> dict:
        updated = subscriptions.update_subscription(
            self.db.session,
            actor=actor,
            subscription_id=subscription_id,
            fields=fields or {},
            rules=self._policy.rules,
        )
        self._commit_and_rebind()
        return updated

    @rpc
    def delete_subscription(self, actor: dict, subscription_id: str) -> dict:
        deleted = subscriptions.delete_subscription(
            self.db.session, actor=actor, subscription_id=subscription_id
        )
        self._commit_and_rebind()
        return deleted

    @rpc
    def rotate_secret(self, actor: dict, subscription_id: str) -> dict:
        overlap = timedelta(hours=float(self._settings.get("secret_overlap_hours", 24.0)))
        return subscriptions.rotate_secret(
            self.db.session, actor=actor, subscription_id=subscription_id, overlap=overlap
        )

    @rpc
    def list_deliveries(
        self, actor: dict, subscription_id: str, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> dict:
        return subscriptions.list_deliveries(
            self.db.session,
            actor=actor,
            subscription_id=subscription_id,
            status=status,
            limit=limit,
            offset=offset,
        )

    @rpc
    def get_delivery(self, actor: dict, delivery_id: str) -> dict:
        return subscriptions.get_delivery(self.db.session, actor=actor, delivery_id=delivery_id)

    @rpc
    def replay_delivery(self, actor: dict, delivery_id: str) -> dict:
        return subscriptions.replay_delivery(self.db.session, actor=actor, delivery_id=delivery_id)

    @rpc
    def send_test_event(self, actor: dict, subscription_id: str) -> dict:
        return subscriptions.send_test_event(self.db.session, actor=actor, subscription_id=subscription_id)
