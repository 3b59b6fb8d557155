"""The ingestion pipeline: fetch → store raw → (in date order) parse, identify, thread → tickets → ack on the server.

1. Each fetched mail's bytes go to the blob store and a ``raw_mails`` row keyed by (mailbox, Message-ID or hash)
   is committed before anything else: a mail seen again only bumps ``deliveries``.
2. Pending rows are processed in (date clamped to arrival, arrival) order, so an original and its reply fetched in
   the same batch are taken in original first.
3. Parsed mails go to ``tickets.ingest_emails`` in batches (idempotent on the same key); the outcome is committed on
   the row, and only then is the mail moved or flagged on the server.
4. A mail that cannot be parsed, is over a limit or is refused is *quarantined* with its reason; automatic mail that
   threads nowhere and our own mail coming back are *ignored* with their reason. Neither blocks the others.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from comptoir_common import mailthread
from comptoir_common.blobs import BlobStore
from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput
from comptoir_common.events import Event, system_actor
from comptoir_common.outbox import add_event
from prometheus_client import Counter
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from comptoir_mail_ingest import directory, parsing
from comptoir_mail_ingest.models import MailboxLease, OutboxMessage, RawMail
from comptoir_mail_ingest.sources import FetchedMail, MailSource

log = logging.getLogger(__name__)

MAILS_FETCHED = Counter(
    "comptoir_mails_fetched_total", "Mails fetched from mailboxes", ["mailbox", "outcome"]
)
MAILS_PROCESSED = Counter("comptoir_mails_processed_total", "Mails processed", ["mailbox", "status"])

# Mails stored per pass before processing starts: everything waiting, so that originals and replies delivered
# together are ordered together (a reply never overtakes its original).
FETCH_LIMIT = 20_000

Ingest = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
# Mails stored per statement when a pass reads its mailbox.
STORE_LOT = 500


class PendingResult(Protocol):
    def result(self) -> list[dict[str, Any]]: ...


IngestAsync = Callable[[list[dict[str, Any]]], PendingResult]


class _Done:
    """The answer of a call made at once (no overlap), shaped like nameko's pending RPC reply."""

    def __init__(self, value: list[dict[str, Any]]):
        self.value = value

    def result(self) -> list[dict[str, Any]]:
        return self.value


@dataclass(frozen=True)
class IngestConfig:
    mail_domain: str
    thread_key: bytes
    max_message_bytes: int = 30 * 1024 * 1024
    max_attachment_bytes: int = 20 * 1024 * 1024
    closed_ticket_policy: str = "reopen"
    batch_size: int = 100
    support_local_parts: frozenset[str] = frozenset({"support"})


@dataclass
class PassStats:
    fetched: int = 0
    duplicates: int = 0
    done: int = 0
    ignored: int = 0
    quarantined: int = 0
    tickets_created: int = 0
    errors: list[str] = field(default_factory=list)


class Pipeline:
    def __init__(
        self,
        session: Session,
        commit: Callable[[], None],
        blobs: BlobStore,
        config: IngestConfig,
        ingest: Ingest,
        ingest_async: IngestAsync | None = None,
    ):
        self.session = session
        self.commit = commit
        self.blobs = blobs
        self.config = config
        self.ingest = ingest
        # Sends a batch and returns at once (the service: nameko's call_async), so the next batch is parsed while
        # the tickets service takes this one in.
        self._ingest_async = ingest_async

    def ingest_async(self, mails: list[dict[str, Any]]) -> PendingResult:
        if self._ingest_async is not None:
            return self._ingest_async(mails)
        return _Done(self.ingest(mails))

    # -- one reader per mailbox ---------------------------------------------------------------------------------

    @contextmanager
    def mailbox_lock(self, mailbox: str) -> Iterator[bool]:
        """Whether this process may read ``mailbox`` now. On PostgreSQL: an advisory lock held on a connection of
        its own for the pass, released at once if the process dies (the server closes the session)."""
        engine = self.session.get_bind()
        if engine.dialect.name != "postgresql":
            yield True  # SQLite: a single local process (make dev)
            return
        key = int.from_bytes(
            hashlib.sha256(f"comptoir-mailbox:{mailbox}".encode()).digest()[:8], "big", signed=True
        )
        with engine.connect() as connection:
            taken = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
            connection.commit()
            try:
                yield taken
            finally:
                if taken:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()

    def record_poll(self, mailbox: str, error: str | None = None) -> None:
        """When the mailbox was last read and the last error (shown to admins by ``mailbox_status``)."""
        row = self.session.get(MailboxLease, mailbox)
        if row is None:
            row = MailboxLease(mailbox=mailbox)
            self.session.add(row)
        row.owner = None
        row.until = utcnow()
        row.last_poll_at = utcnow()
        row.last_error = error
        self.commit()

    # -- step 1: store ----------------------------------------------------------------------------------------

    def store_many(self, mailbox: str, items: list[FetchedMail]) -> list[tuple[RawMail, bool]]:
        """The rows of these mails, created if new, as (row, created): one query for the keys already known and
        one flush for the new rows. The caller commits."""
        keyed = []
        for fetched in items:
            headers = parsing.quick_headers(fetched.raw)
            key, rfc_id = parsing.message_key(fetched.raw, headers)
            keyed.append((fetched, headers, key, rfc_id))
        known: dict[str, RawMail] = {
            row.message_key: row
            for row in self.session.scalars(
                select(RawMail).where(
                    RawMail.mailbox == mailbox, RawMail.message_key.in_({key for _, _, key, _ in keyed})
                )
            )
        }
        result: list[tuple[RawMail, bool]] = []
        quarantined = []
        for fetched, headers, key, rfc_id in keyed:
            row = known.get(key)
            if row is not None:  # seen before, or twice in this lot
                row.deliveries += 1
                result.append((row, False))
                continue
            blob = self.blobs.put_bytes(fetched.raw)
            date = parsing.mail_date(headers, fetched.arrived_at)
            row = RawMail(
                mailbox=mailbox,
                message_key=key,
                rfc_message_id=rfc_id,
                blob_key=blob.key,
                size=blob.size,
                subject=parsing.header_text(headers.get("Subject"))[:500] or None,
                sender=parsing.header_text(headers.get("From"))[:320] or None,
                arrived_at=fetched.arrived_at,
                mail_date=date,
                sort_date=date or fetched.arrived_at,
                status="pending",
                deliveries=1,
                attempts=0,
            )
            if blob.size > self.config.max_message_bytes:
                row.status = "quarantined"
                row.reason = (
                    f"Message trop volumineux : {blob.size / 1048576:.1f} Mo "
                    f"(limite {self.config.max_message_bytes / 1048576:.0f} Mo)"
                )
                row.processed_at = utcnow()
                quarantined.append(row)
            # No race to guard against: this process holds the mailbox's lock for the whole pass.
            self.session.add(row)
            known[key] = row
            result.append((row, True))
        self.session.flush()
        for row in quarantined:
            self._quarantined_event(row)
        return result

    def store(self, mailbox: str, fetched: FetchedMail) -> tuple[RawMail, bool]:
        """The row of one mail, created if new; (row, created). The caller commits."""
        return self.store_many(mailbox, [fetched])[0]

    # -- the whole pass -------------------------------------------------------------------------------------

    def run(self, mailbox: dict[str, Any], source: MailSource) -> PassStats:
        """Fetch what the source holds, store it, process every pending mail of the mailbox, ack on the server."""
        stats = PassStats()
        name = mailbox["name"]
        refs: dict[int, list[str]] = {}
        finished_refs: list[str] = []
        lot: list[FetchedMail] = []

        def store_lot() -> None:
            for item, (row, created) in zip(lot, self.store_many(name, lot), strict=True):
                stats.fetched += 1
                if not created:
                    stats.duplicates += 1
                MAILS_FETCHED.labels(name, "new" if created else "duplicate").inc()
                if row.status == "pending":
                    refs.setdefault(row.id, []).append(item.ref)
                else:
                    finished_refs.append(item.ref)
            self.commit()
            lot.clear()

        for item in source.fetch(FETCH_LIMIT):
            lot.append(item)
            if len(lot) >= STORE_LOT:
                store_lot()
        if lot:
            store_lot()
        for ref in finished_refs:
            source.done(ref)
        self.process_pending(mailbox, stats, refs, source)
        return stats

    def process_pending(
        self,
        mailbox: dict[str, Any],
        stats: PassStats,
        refs: dict[int, list[str]] | None = None,
        source: MailSource | None = None,
    ) -> None:
        """Every pending mail of the mailbox, in (date, arrival) order, batch by batch. While the tickets service
        takes a batch in, the next one is parsed: the two processes work at the same time, and the batches still
        reach the tickets service one after the other, in order."""
        name = mailbox["name"]
        refs = refs or {}
        rows = self.session.scalars(
            select(RawMail)
            .where(RawMail.mailbox == name, RawMail.status == "pending")
            .order_by(RawMail.sort_date, RawMail.id)
            .limit(FETCH_LIMIT)
        ).all()
        if not rows:
            return
        size = max(1, self.config.batch_size)
        batches = [rows[start : start + size] for start in range(0, len(rows), size)]
        acked: set[int] = set()
        prepared = self._prepare_batch(batches[0], mailbox, stats)
        for index in range(len(batches)):
            call = self.ingest_async([mail for _, mail, _ in prepared]) if prepared else None
            following = (
                self._prepare_batch(batches[index + 1], mailbox, stats) if index + 1 < len(batches) else []
            )
            if call is not None:
                # Raises when the tickets service is unreachable: the rows stay pending, the pass ends, nothing
                # more is acked on the server, and the next pass tries again.
                results = call.result()
                for (row, _, events), result in zip(prepared, results, strict=True):
                    for event in events:
                        add_event(self.session, OutboxMessage, event)
                    self._apply_result(row, result, stats)
            self.commit()
            if source is not None:
                for batch in batches[: index + 2]:
                    for row in batch:
                        if row.status != "pending" and row.id not in acked:
                            acked.add(row.id)
                            for ref in refs.pop(row.id, []):
                                source.done(ref)
            prepared = following

    def _prepare_batch(
        self, rows: list[RawMail], mailbox: dict[str, Any], stats: PassStats
    ) -> list[tuple[RawMail, dict[str, Any], list[Event]]]:
        """Parse, identify and thread the mails of a batch; the ones that cannot go to tickets are finished here."""
        batch: list[tuple[RawMail, dict[str, Any], list[Event]]] = []
        for row in rows:
            row.attempts += 1
            events: list[Event] = []
            try:
                prepared = self.prepare(row, mailbox, events)
            except parsing.UnparseableMail as exc:
                self._finish(row, "quarantined", str(exc), stats)
                continue
            except Exception as exc:  # noqa: BLE001 - a bug on one mail must not block the mailbox
                log.exception("mail %s could not be prepared", row.id)
                self._finish(
                    row, "quarantined", f"Erreur de traitement : {type(exc).__name__}: {exc}"[:1000], stats
                )
                continue
            if isinstance(prepared, str):
                self._finish(row, "ignored", prepared, stats)
            else:
                batch.append((row, prepared, events))
        if batch:
            users, contacts = directory.lookup(
                self.session, {mail["sender"]["email"] for _, mail, _ in batch}
            )
            for _, mail, _ in batch:
                email, sender_name = mail["sender"]["email"], mail["sender"]["name"]
                mail["sender"] = directory.describe(email, sender_name, users.get(email), contacts.get(email))
        return batch

    def _apply_result(self, row: RawMail, result: dict[str, Any], stats: PassStats) -> None:
        outcome = result.get("outcome")
        if outcome in ("created", "added", "duplicate"):
            row.ticket_id = result.get("ticket_id")
            row.ticket_message_id = result.get("message_id")
            row.rule = result.get("rule")
            if outcome == "created":
                stats.tickets_created += 1
            self._finish(row, "done", result.get("reason"), stats)
        elif outcome == "ignored":
            self._finish(row, "ignored", result.get("reason"), stats)
        else:
            self._finish(row, "quarantined", f"Refusé par le service tickets : {result.get('reason')}", stats)

    def _finish(self, row: RawMail, status: str, reason: str | None, stats: PassStats) -> None:
        row.status = status
        row.reason = reason
        row.processed_at = utcnow()
        setattr(stats, status, getattr(stats, status) + 1)
        MAILS_PROCESSED.labels(row.mailbox, status).inc()
        if status == "quarantined":
            self._quarantined_event(row)

    def _quarantined_event(self, row: RawMail) -> None:
        add_event(
            self.session,
            OutboxMessage,
            Event(
                type="mail.quarantined",
                actor=system_actor("mail_ingest"),
                data={
                    "raw_mail_id": row.id,
                    "mailbox": row.mailbox,
                    "message_id": row.rfc_message_id,
                    "sender": row.sender,
                    "subject": row.subject,
                    "reason": row.reason,
                },
            ),
        )

    # -- step 2: parse, identify, thread ------------------------------------------------------------------------

    def prepare(
        self, row: RawMail, mailbox: dict[str, Any], events: list[Event] | None = None
    ) -> dict[str, Any] | str:
        """The message for ``tickets.ingest_emails``, or the reason (a string) to ignore the mail. Events it causes
        (``mail.bounced``) go to ``events`` when given, to be recorded with the mail's outcome; else at once."""
        if row.size > self.config.max_message_bytes:
            raise parsing.UnparseableMail(
                f"Message trop volumineux : {row.size / 1048576:.1f} Mo "
                f"(limite {self.config.max_message_bytes / 1048576:.0f} Mo)"
            )
        with self.blobs.open(row.blob_key) as handle:
            raw = handle.read()
        parsed = parsing.parse(raw, arrived_at=row.arrived_at, mail_domain=self.config.mail_domain)
        if parsed.own_mail:
            return parsed.own_mail
        key, domain = self.config.thread_key, self.config.mail_domain
        candidates: list[dict[str, str]] = []
        for ref in parsed.references:
            ticket_id = mailthread.ticket_from_message_id(key, ref, domain)
            if ticket_id:
                candidates.append({"rule": "message_id", "ticket_id": ticket_id, "detail": f"<{ref}>"})
        for token in mailthread.tokens_in_addresses(parsed.recipients, set(self.config.support_local_parts)):
            ticket_id = mailthread.verify_token(key, token)
            if ticket_id:
                candidates.append({"rule": "plus_address", "ticket_id": ticket_id, "detail": "support+…"})
        for token in mailthread.tokens_in_body(parsed.text):
            ticket_id = mailthread.verify_token(key, token)
            if ticket_id:
                candidates.append(
                    {"rule": "body_marker", "ticket_id": ticket_id, "detail": f"[ref:{token[:8]}…]"}
                )

        text = parsed.text
        bounce = None
        if parsed.bounce is not None:
            bounce = parsed.bounce
            original = bounce.original_message_id
            ticket_id = mailthread.ticket_from_message_id(key, original, domain) if original else None
            if ticket_id:
                candidates.insert(
                    0, {"rule": "message_id", "ticket_id": ticket_id, "detail": f"<{original}>"}
                )
            bounced = Event(
                type="mail.bounced",
                actor=system_actor("mail_ingest"),
                data={
                    "raw_mail_id": row.id,
                    "mailbox": row.mailbox,
                    "original_message_id": f"<{original}>" if original else None,
                    "ticket_id": ticket_id,
                    "recipient": bounce.recipient,
                    "status": bounce.status,
                    "action": bounce.action,
                    "diagnostic": bounce.diagnostic,
                    "permanent": bounce.permanent,
                },
            )
            if events is None:
                add_event(self.session, OutboxMessage, bounced)
            else:
                events.append(bounced)
            text = (
                f"Échec de distribution d'un e-mail envoyé par le support"
                f"{' à ' + bounce.recipient if bounce.recipient else ''}"
                f" (statut {bounce.status or 'inconnu'}"
                f"{', définitif' if bounce.permanent else ', temporaire'})."
                f"{chr(10) + 'Diagnostic : ' + bounce.diagnostic if bounce.diagnostic else ''}\n\n{text}"
            )

        attachments, refused = [], []
        for attachment in parsed.attachments:
            size = len(attachment.payload)
            if size > self.config.max_attachment_bytes:
                refused.append(
                    {
                        "filename": attachment.filename,
                        "size": size,
                        "reason": f"au-delà de la limite de {self.config.max_attachment_bytes // 1048576} Mo",
                    }
                )
                continue
            blob = self.blobs.put_bytes(attachment.payload)
            attachments.append(
                {
                    "filename": attachment.filename,
                    "content_type": attachment.content_type,
                    "size": blob.size,
                    "blob_key": blob.key,
                    "content_id": attachment.content_id,
                    "inline": attachment.inline,
                }
            )
        row.sender = parsed.from_email
        row.subject = parsed.subject[:500] or None
        return {
            "mailbox": row.mailbox,
            "message_key": row.message_key,
            "rfc_message_id": row.rfc_message_id,
            "raw_blob_key": row.blob_key,
            "references": parsed.references,
            "candidates": candidates,
            "subject_numbers": mailthread.subject_numbers(parsed.subject),
            # Filled for the whole batch at once by process_pending (directory.lookup).
            "sender": {"email": parsed.from_email, "name": parsed.from_name},
            "subject": parsed.subject,
            "title": parsing.clean_title(parsed.subject),
            "text": text,
            "html": parsed.html,
            "attachments": attachments,
            "refused_attachments": refused,
            "date": (parsed.date or row.arrived_at).isoformat(),
            "automatic": parsed.automatic,
            "closed_policy": self.config.closed_ticket_policy,
            "cc": parsed.cc,
            "to": parsed.to,
        }


# -- admin: quarantine and replay ----------------------------------------------------------------------------


def raw_mail_to_dict(row: RawMail) -> dict[str, Any]:
    return {
        "id": row.id,
        "mailbox": row.mailbox,
        "message_id": row.rfc_message_id,
        "sender": row.sender,
        "subject": row.subject,
        "size": row.size,
        "arrived_at": row.arrived_at.isoformat(),
        "status": row.status,
        "reason": row.reason,
        "ticket_id": row.ticket_id,
        "rule": row.rule,
        "deliveries": row.deliveries,
        "attempts": row.attempts,
        "processed_at": row.processed_at.isoformat() if row.processed_at else None,
    }


SET_ASIDE_STATUSES = ("quarantined", "ignored")
# Raw header block shown to admins (enough to see why a mail was refused, bounded for huge or broken mail).
MAX_HEADER_BYTES = 64 * 1024


def list_set_aside(session: Session, statuses: tuple[str, ...] = SET_ASIDE_STATUSES, limit: int = 100):
    rows = session.scalars(
        select(RawMail).where(RawMail.status.in_(statuses)).order_by(RawMail.id.desc()).limit(limit)
    ).all()
    return [raw_mail_to_dict(row) for row in rows]


def raw_headers(blobs: BlobStore, row: RawMail) -> str:
    """The mail's header block as it arrived (decoded leniently), for admins looking at a set-aside mail."""
    try:
        with blobs.open(row.blob_key) as handle:
            head = handle.read(MAX_HEADER_BYTES)
    except OSError:
        return "(contenu brut introuvable dans le stockage)"
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = head.find(separator)
        if end >= 0:
            head = head[:end]
            break
    return head.decode("utf-8", errors="replace").replace("\r\n", "\n")


def set_aside_detail(session: Session, blobs: BlobStore, raw_mail_id: int) -> dict[str, Any] | None:
    row = session.get(RawMail, raw_mail_id)
    if row is None:
        return None
    return raw_mail_to_dict(row) | {"headers": raw_headers(blobs, row)}


def replay(session: Session, raw_mail_id: int) -> RawMail | None:
    """Put a quarantined (or ignored) mail back in the queue; the next pass processes it again."""
    row = session.get(RawMail, raw_mail_id)
    if row is None:
        return None
    if row.status in SET_ASIDE_STATUSES:
        row.status = "pending"
        row.reason = None
        row.processed_at = None
    return row


def discard(session: Session, raw_mail_id: int, by: str) -> RawMail | None:
    """An admin gives up on a set-aside mail: it leaves the list for good. The row stays (status ``discarded``), so
    the same mail delivered again is still recognised and not processed; the raw bytes stay in the blob store."""
    row = session.get(RawMail, raw_mail_id)
    if row is None:
        return None
    if row.status not in SET_ASIDE_STATUSES:
        raise InvalidInput("Seul un e-mail en quarantaine ou ignoré peut être supprimé.")
    row.reason = f"{row.reason or ''} ; supprimé par {by}".lstrip(" ;")
    row.status = "discarded"
    row.processed_at = utcnow()
    return row
