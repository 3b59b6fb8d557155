"""The nameko face of mail-ingest: a timer reads the mailboxes, handlers keep the sender directory, admin RPCs."""

from __future__ import annotations

import logging
import time
from typing import Any

from comptoir_common import mailthread
from comptoir_common.errors import NotFound, PermissionDenied
from comptoir_common.events import Event
from comptoir_common.metrics import record_pass
from comptoir_common.nameko_ext import BlobStorage, Database, event_handler, rpc
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from nameko.timer import timer

from comptoir_mail_ingest import directory, pipeline
from comptoir_mail_ingest.models import OutboxMessage, ProcessedEvent
from comptoir_mail_ingest.sources import open_source

log = logging.getLogger(__name__)

# When each mailbox was last read by this process (the timer ticks every second; mailboxes have their own pace).
_last_poll: dict[str, float] = {}


def _require_admin(actor: dict) -> None:
    if actor.get("role") != "admin":
        raise PermissionDenied("Réservé aux administrateurs.")


class MailIngestService:
    name = "mail_ingest"

    db = Database(outbox_model=OutboxMessage, inbox_model=ProcessedEvent)
    blobs = BlobStorage()
    config = Config()
    tickets = RpcProxy("tickets")

    def _pipeline(self) -> pipeline.Pipeline:
        config = self.config
        ingest_config = pipeline.IngestConfig(
            mail_domain=config["MAIL_DOMAIN"],
            thread_key=mailthread.thread_key(config["THREAD_SECRET"]),
            max_message_bytes=int(config["MAX_MESSAGE_BYTES"]),
            max_attachment_bytes=int(config["MAX_ATTACHMENT_BYTES"]),
            closed_ticket_policy=config["CLOSED_TICKET_POLICY"],
            batch_size=int(config["BATCH_SIZE"]),
            support_local_parts=frozenset(
                box["address"].rpartition("@")[0].lower() for box in config["MAILBOXES"]
            ),
        )
        return pipeline.Pipeline(
            session=self.db.session,
            commit=self.db.commit,
            blobs=self.blobs,
            config=ingest_config,
            ingest=lambda mails: self.tickets.ingest_emails(mails),
            ingest_async=lambda mails: self.tickets.ingest_emails.call_async(mails),
        )

    @timer(interval=1, eager=True)
    def poll_mailboxes(self) -> None:
        now = time.monotonic()
        for mailbox in self.config["MAILBOXES"]:
            name = mailbox["name"]
            if now - _last_poll.get(name, 0.0) < float(mailbox["poll_seconds"]):
                continue
            _last_poll[name] = now
            self._poll(mailbox)

    def _poll(self, mailbox: dict[str, Any]) -> None:
        steps = self._pipeline()
        name = mailbox["name"]
        with steps.mailbox_lock(name) as mine:
            if not mine:  # another instance is reading this mailbox now
                return
            error = None
            source = None
            try:
                source = open_source(mailbox, timeout=float(self.config["IMAP_TIMEOUT"]))
                stats = steps.run(mailbox, source)
                if stats.fetched or stats.done or stats.quarantined or stats.ignored:
                    log.info(
                        "mailbox read",
                        extra={
                            "mailbox": name,
                            "fetched": stats.fetched,
                            "duplicates": stats.duplicates,
                            "done": stats.done,
                            "ignored": stats.ignored,
                            "quarantined": stats.quarantined,
                            "tickets_created": stats.tickets_created,
                        },
                    )
            except Exception as exc:  # noqa: BLE001 - one mailbox failing must not stop the others; retried later
                self.db.rollback()
                error = f"{type(exc).__name__}: {exc}"[:2000]
                log.warning("mailbox %s could not be read: %s", name, error, exc_info=True)
            finally:
                if source is not None:
                    source.close()
            steps.record_poll(name, error)
            record_pass("mailbox", name, error is None)  # alert ComptoirMailboxUnreadable

    # -- admin -------------------------------------------------------------------------------------------------

    @rpc
    def list_set_aside(self, actor: dict, status: str | None = None, limit: int = 100) -> list:
        """Quarantined mails (unreadable, over a limit, refused) and ignored ones (automatic, our own), newest first."""
        _require_admin(actor)
        statuses = (status,) if status in pipeline.SET_ASIDE_STATUSES else pipeline.SET_ASIDE_STATUSES
        return pipeline.list_set_aside(self.db.session, statuses, max(1, min(int(limit), 500)))

    @rpc
    def get_set_aside(self, actor: dict, raw_mail_id: int) -> dict:
        """One set-aside mail with its raw header block."""
        _require_admin(actor)
        found = pipeline.set_aside_detail(self.db.session, self.blobs, int(raw_mail_id))
        if found is None:
            raise NotFound("E-mail introuvable.")
        return found

    @rpc
    def replay(self, actor: dict, raw_mail_id: int) -> dict:
        """Process a set-aside mail again (after a fix or a limit change) on the next pass."""
        _require_admin(actor)
        row = pipeline.replay(self.db.session, int(raw_mail_id))
        if row is None:
            raise NotFound("E-mail introuvable.")
        return pipeline.raw_mail_to_dict(row)

    @rpc
    def discard(self, actor: dict, raw_mail_id: int) -> dict:
        """Give up on a set-aside mail (kept as ``discarded`` so that a redelivery is still recognised)."""
        _require_admin(actor)
        row = pipeline.discard(self.db.session, int(raw_mail_id), actor.get("name") or "un administrateur")
        if row is None:
            raise NotFound("E-mail introuvable.")
        return pipeline.raw_mail_to_dict(row)

    @rpc
    def mailbox_status(self, actor: dict) -> list:
        _require_admin(actor)
        from comptoir_mail_ingest.models import MailboxLease

        result = []
        for mailbox in self.config["MAILBOXES"]:
            lease = self.db.session.get(MailboxLease, mailbox["name"])
            result.append(
                {
                    "name": mailbox["name"],
                    "address": mailbox["address"],
                    "kind": "maildir" if mailbox["url"].startswith("maildir:") else "imap",
                    "last_poll_at": lease.last_poll_at.isoformat() if lease and lease.last_poll_at else None,
                    "last_error": lease.last_error if lease else None,
                }
            )
        return result

    # -- sender directory (read models) ------------------------------------------------------------------------

    @event_handler("auth", "user.created")
    def on_user_created(self, event: Event) -> None:
        directory.apply_user_event(self.db.session, event.data)

    @event_handler("auth", "user.updated")
    def on_user_updated(self, event: Event) -> None:
        directory.apply_user_event(self.db.session, event.data)

    @event_handler("auth", "user.deactivated")
    def on_user_deactivated(self, event: Event) -> None:
        directory.apply_user_event(self.db.session, event.data | {"active": False})

    @event_handler("auth", "user.reactivated")
    def on_user_reactivated(self, event: Event) -> None:
        directory.apply_user_event(self.db.session, event.data | {"active": True})

    @event_handler("crm_sync", "contact.upserted")
    def on_contact_upserted(self, event: Event) -> None:
        directory.apply_contact_upserted(self.db.session, event.data)

    @event_handler("crm_sync", "contact.removed")
    def on_contact_removed(self, event: Event) -> None:
        directory.apply_contact_removed(self.db.session, event.data)
