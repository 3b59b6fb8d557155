"""The FileMaker sync: incremental passes on the modification timestamp, full passes that catch deletions.

- Incremental: ``_find`` on the modification field ``>=`` (watermark − overlap), sorted by that field, read page by
  page. Paging is by timestamp (keyset): the next page starts at the last timestamp seen, so a record edited during
  the pass cannot shift others out of view; rows already applied in this pass are skipped, and a page made only of
  records with the same timestamp continues by offset. Rows whose ``modId`` is unchanged are not touched.
- Full: every record sorted by key; afterwards the active FileMaker customers that were not seen are checked one by
  one (a record deleted during the scan shifts the pages) and deactivated, never deleted.
- Each page is applied in one transaction together with the new watermark: a failure never half-applies a page, and
  an interrupted pass resumes from the last committed page. A record that cannot be mapped or stored is recorded in
  ``sync_rejections`` and the others go on.
- One pass at a time across every instance of the service: a lease row (``sync_state``), taken with a conditional
  UPDATE, renewed with each page.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput, PermissionDenied
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from comptoir_crm_sync import directory, policy
from comptoir_crm_sync.filemaker import (
    BadRecord,
    FileMakerClient,
    MappedRecord,
    SourceRecord,
    SyncFailed,
    format_timestamp,
    map_record,
    parse_timestamp,
)
from comptoir_crm_sync.models import Customer, SyncRejection, SyncState
from comptoir_crm_sync.settings import CrmSyncSettings

log = logging.getLogger(__name__)

SYNC_RECORDS = Counter(
    "comptoir_crm_sync_records_total", "FileMaker records handled by the sync", ["outcome"]
)
SYNC_PASSES = Counter("comptoir_crm_sync_passes_total", "FileMaker sync passes", ["kind", "result"])
SYNC_DURATION = Histogram(
    "comptoir_crm_sync_pass_duration_seconds",
    "Duration of a FileMaker sync pass",
    ["kind"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
SYNC_LAST_SUCCESS = Gauge("comptoir_crm_sync_last_success_timestamp", "Unix time of the last successful pass")

SOURCE = "filemaker"
KEEP_REJECTIONS = 500


class LeaseLost(Exception):
    pass


@dataclass
class SyncReport:
    kind: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    rejected: int = 0
    pages: int = 0
    ok: bool = True
    error: str | None = None
    duration: float = 0.0
    skipped: bool = False
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
            "rejected": self.rejected,
        }


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------------------------------------------- lease


def ensure_state(session_factory: sessionmaker[Session], source: str) -> None:
    with session_factory() as session:
        if session.get(SyncState, source) is None:
            session.add(SyncState(source=source, last_counts={}))
            try:
                session.commit()
            except IntegrityError:  # another instance made it first
                session.rollback()


def take_lease(session: Session, source: str, owner: str, seconds: float) -> bool:
    """Atomically take (or renew) the source's lease; False if another instance holds a live one."""
    now = utcnow()
    result = session.execute(
        update(SyncState)
        .where(
            SyncState.source == source,
            or_(SyncState.lease_owner.is_(None), SyncState.lease_owner == owner, SyncState.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
    )
    return result.rowcount == 1


def release_lease(session: Session, source: str, owner: str) -> None:
    session.execute(
        update(SyncState)
        .where(SyncState.source == source, SyncState.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


# ------------------------------------------------------------------------------------------------- engine


class FileMakerSync:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: CrmSyncSettings,
        client: FileMakerClient | None = None,
        owner: str | None = None,
    ):
        self.session_factory = session_factory
        self.settings = settings
        self.mapping = settings.filemaker
        self.client = client or FileMakerClient(settings)
        self.owner = owner or instance_id()
        self.page_size = max(1, settings.sync_page_size)

    # ---- entry point

    def run(self, full: bool | None = None) -> SyncReport:
        """One pass; ``full=None`` decides (full when asked for, when due, or when there is no watermark yet)."""
        ensure_state(self.session_factory, SOURCE)
        with self.session_factory() as session:
            if not take_lease(session, SOURCE, self.owner, self.settings.sync_lease_seconds):
                session.rollback()
                return SyncReport(kind="skipped", skipped=True)
            state = session.get(SyncState, SOURCE)
            if full is None:
                due = (
                    state.last_full_at is None
                    or (utcnow() - state.last_full_at).total_seconds() >= self.settings.full_sync_interval
                )
                full = bool(state.full_requested or due or not state.watermark)
            kind = "full" if full else "incremental"
            state.last_run_kind = kind
            state.last_run_started_at = utcnow()
            session.commit()
        report = SyncReport(kind=kind)
        started = time.perf_counter()
        try:
            if full:
                self._full(report)
            else:
                self._incremental(report)
        except (SyncFailed, LeaseLost) as exc:
            report.ok = False
            report.error = (
                str(exc) if isinstance(exc, SyncFailed) else "Synchronisation reprise par une autre instance."
            )
        except Exception as exc:  # the database, a bug: reported on the status page, retried on the next tick
            log.exception("FileMaker sync failed")
            report.ok = False
            report.error = f"Erreur interne : {type(exc).__name__}: {exc}"[:2000]
        report.duration = time.perf_counter() - started
        self._finish(report)
        SYNC_PASSES.labels(kind, "ok" if report.ok else "failed").inc()
        SYNC_DURATION.labels(kind).observe(report.duration)
        for outcome, count in report.counts().items():
            SYNC_RECORDS.labels(outcome).inc(count)
        if report.ok:
            SYNC_LAST_SUCCESS.set(time.time())
        log.info(
            "FileMaker %s pass %s in %.2fs",
            kind,
            "done" if report.ok else "failed",
            report.duration,
            extra=report.counts() | {"error": report.error},
        )
        return report

    def _finish(self, report: SyncReport) -> None:
        with self.session_factory() as session:
            state = session.get(SyncState, SOURCE)
            now = utcnow()
            state.last_run_finished_at = now
            state.last_run_duration = round(report.duration, 3)
            state.last_run_ok = report.ok
            state.last_counts = report.counts() | {"pages": report.pages}
            if report.ok:
                if report.kind == "full":
                    state.last_full_at = now
                    state.full_requested = False
            else:
                state.last_error = report.error
                state.last_error_at = now
            release_lease(session, SOURCE, self.owner)
            prune_rejections(session)
            session.commit()

    # ---- passes

    def _incremental(self, report: SyncReport) -> None:
        with self.session_factory() as session:
            watermark = parse_timestamp(session.get(SyncState, SOURCE).watermark)
        if watermark is None:
            return self._full(report)
        cursor = watermark - timedelta(seconds=self.settings.sync_overlap_seconds)
        offset = 1
        applied: set[tuple[str, str]] = set()
        while True:
            records = self.client.find_modified_since(cursor, offset, self.page_size)
            if not records:
                return
            fresh = [r for r in records if (r.record_id, r.mod_id) not in applied]
            mapped_times = self._apply_page(fresh, report)
            applied.update((r.record_id, r.mod_id) for r in fresh)
            if len(records) < self.page_size:
                return
            last = max((t for t in mapped_times if t is not None), default=None)
            if last is not None and last > cursor:
                cursor, offset = last, 1
            else:  # a whole page within one second: go on by offset inside it
                offset += self.page_size

    def _full(self, report: SyncReport) -> None:
        present: set[str] = set()
        offset = 1
        while True:
            records = self.client.all_records(offset, self.page_size)
            if not records:
                break
            self._apply_page(records, report, present)
            offset += len(records)
            if len(records) < self.page_size:
                break
        with self.session_factory() as session:
            candidates = session.scalars(
                select(Customer.external_key).where(Customer.source == SOURCE, Customer.active.is_(True))
            ).all()
        missing = [key for key in candidates if key not in present]
        # A record deleted while we paged shifts the following ones by one: check before deactivating.
        confirmed = []
        for key in missing:
            found = self.client.find_by_key(key)
            if found:
                self._apply_page(found, report, present)
            else:
                confirmed.append(key)
        if confirmed:
            with self.session_factory() as session:
                self._renew(session)
                for customer in session.scalars(
                    select(Customer).where(Customer.source == SOURCE, Customer.external_key.in_(confirmed))
                ):
                    if directory.deactivate(session, customer):
                        report.deactivated += 1
                session.commit()

    # ---- one page, one transaction

    def _renew(self, session: Session) -> None:
        if not take_lease(session, SOURCE, self.owner, self.settings.sync_lease_seconds):
            raise LeaseLost()

    def _apply_page(
        self, records: list[SourceRecord], report: SyncReport, present: set[str] | None = None
    ) -> list:
        """Apply a page in one transaction, as one batch (a few statements whatever its size). Records are
        validated before any write, so a database error is rare: when one happens the page is rolled back and
        applied again record by record, each in a savepoint, so that the one bad record is rejected and the others
        stored."""
        try:
            return self._apply_page_once(records, report, present, careful=False)
        except SQLAlchemyError:
            log.warning("page refused by the database; applying it record by record", exc_info=True)
            return self._apply_page_once(records, report, present, careful=True)

    def _apply_page_once(
        self, records: list[SourceRecord], report: SyncReport, present: set[str] | None, careful: bool
    ) -> list:
        times = []
        counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
        with self.session_factory() as session:
            self._renew(session)
            mapped_records: list[tuple[SourceRecord, MappedRecord]] = []
            page_keys: set[str] = set()
            for record in records:
                key = str(record.fields.get(self.mapping.key_field) or "").strip() or None
                if present is not None and key:
                    present.add(key)
                try:
                    mapped = map_record(record, self.mapping)
                    times.append(mapped.modified_at)
                    if mapped.key in page_keys:
                        raise BadRecord(f"clé « {mapped.key} » en double dans FileMaker")
                    page_keys.add(mapped.key)
                    mapped_records.append((record, mapped))
                except BadRecord as exc:
                    times.append(parse_timestamp(record.fields.get(self.mapping.mod_field)))
                    counts["rejected"] += 1
                    self._reject(session, key, str(exc), record)

            def upsert(batch: list[tuple[SourceRecord, MappedRecord]]) -> list[directory.UpsertResult]:
                return directory.upsert_many_from_source(
                    session,
                    source=SOURCE,
                    items=[
                        directory.SourceItem(mapped.key, mapped.data, record.record_id, record.mod_id)
                        for record, mapped in batch
                    ],
                    sales_rep_match=self.mapping.sales_rep_match,
                )

            if careful:
                results = []
                for one in mapped_records:
                    try:
                        with session.begin_nested():
                            results += upsert([one])
                    except SQLAlchemyError as exc:
                        log.warning("FileMaker record %s not stored", one[1].key, exc_info=True)
                        results.append(
                            directory.UpsertResult(
                                "rejected", error=InvalidInput(f"refusée par la base : {type(exc).__name__}")
                            )
                        )
            else:
                results = upsert(mapped_records)
            for (record, mapped), result in zip(mapped_records, results, strict=True):
                counts[result.outcome] += 1
                if result.outcome == "rejected":
                    self._reject(session, mapped.key, str(result.error), record)
                    continue
                if result.outcome != "unchanged" and mapped.dropped_emails:
                    dropped = ", ".join(mapped.dropped_emails)
                    self._reject(
                        session, mapped.key, f"adresses e-mail invalides ignorées : {dropped}", record
                    )
            page_max = max((t for t in times if t is not None), default=None)
            state = session.get(SyncState, SOURCE)
            current = parse_timestamp(state.watermark)
            if page_max is not None and (current is None or page_max > current):
                state.watermark = format_timestamp(page_max)
            session.commit()
        report.pages += 1
        for name, value in counts.items():
            setattr(report, name, getattr(report, name) + value)
        return times

    def _reject(self, session: Session, key: str | None, reason: str, record: SourceRecord) -> None:
        log.warning("FileMaker record %s rejected: %s", key or record.record_id, reason)
        session.add(
            SyncRejection(
                source=SOURCE,
                external_key=key,
                reason=reason,
                record={
                    "recordId": record.record_id,
                    "modId": record.mod_id,
                    "fieldData": _jsonable(record.fields),
                },
            )
        )


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v) for k, v in fields.items()}


# ------------------------------------------------------------------------------------------------- status


def request_sync(session: Session, *, actor: dict, full: bool) -> dict[str, Any]:
    """Ask for a full pass on the next tick (an incremental one runs on every tick anyway)."""
    if not policy.can_manage(actor):
        raise PermissionDenied("Seuls les superviseurs peuvent lancer une synchronisation.")
    if full:
        state = session.get(SyncState, SOURCE)
        if state is None:
            state = SyncState(source=SOURCE, last_counts={})
            session.add(state)
        state.full_requested = True
        session.flush()
    return {"requested": "full" if full else "incremental"}


def _state_dict(state: SyncState | None) -> dict[str, Any]:
    def iso(value):
        return value.isoformat() if value else None

    if state is None:
        return {"last_run_at": None, "counts": {}, "last_error": None}
    return {
        "watermark": state.watermark,
        "running": bool(state.lease_owner and state.lease_until and state.lease_until > utcnow()),
        "full_requested": state.full_requested,
        "last_full_at": iso(state.last_full_at),
        "last_run_kind": state.last_run_kind,
        "last_run_at": iso(state.last_run_started_at),
        "last_run_finished_at": iso(state.last_run_finished_at),
        "last_run_duration": state.last_run_duration,
        "last_run_ok": state.last_run_ok,
        "counts": dict(state.last_counts or {}),
        "last_error": state.last_error,
        "last_error_at": iso(state.last_error_at),
    }


def sync_status(session: Session, *, actor: dict, settings: CrmSyncSettings) -> dict[str, Any]:
    if not policy.can_manage(actor):
        raise PermissionDenied("Seuls les superviseurs peuvent voir l'état de la synchronisation.")
    rejections = session.scalars(select(SyncRejection).order_by(SyncRejection.id.desc()).limit(50)).all()
    return {
        "filemaker": _state_dict(session.get(SyncState, "filemaker"))
        | {
            "configured": bool(settings.filemaker_url),
            "url": settings.filemaker_url,
            "layout": settings.filemaker.layout,
            "interval_seconds": settings.sync_interval,
            "full_interval_seconds": settings.full_sync_interval,
        },
        "quadra": _state_dict(session.get(SyncState, "quadra")),
        "rejections": [
            {
                "source": r.source,
                "external_key": r.external_key,
                "reason": r.reason,
                "at": r.created_at.isoformat(),
            }
            for r in rejections
        ],
    }


def prune_rejections(session: Session) -> None:
    """Keep the latest rejections only."""
    ids = session.scalars(
        select(SyncRejection.id).order_by(SyncRejection.id.desc()).offset(KEEP_REJECTIONS).limit(1)
    ).all()
    if ids:
        session.execute(delete(SyncRejection).where(SyncRejection.id <= ids[0]))
