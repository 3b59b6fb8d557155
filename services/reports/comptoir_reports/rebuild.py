"""Rebuild from scratch: forget every ticket figure, then replay the tickets service's whole event history.

An admin requests a rebuild (a row in ``rebuild_runs``); one instance of the service claims it and pages through
``tickets.replay_events(after_seq, limit)``, folding each page with the same code as live events and committing per
page. Live events keep arriving meanwhile: they are stored by event id like replayed ones, so both paths converge on
the same figures. A run whose instance died stops updating its heartbeat and is taken over from the start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import PermissionDenied
from comptoir_common.events import Event
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from comptoir_reports import projection
from comptoir_reports.models import RebuildRun

# (after_seq, limit) -> {"events": [envelope, ...], "last_seq": int, "more": bool}, as tickets.replay_events answers.
FetchPage = Callable[[int, int], dict[str, Any]]
STALE_AFTER = timedelta(minutes=5)
ACTIVE = ("requested", "running")


def run_to_dict(run: RebuildRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id,
        "status": run.status,
        "requested_at": run.requested_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "events_replayed": run.events_replayed,
        "last_seq": run.last_seq,
        "error": run.error,
    }


def request_rebuild(session: Session, *, actor: dict[str, Any]) -> dict[str, Any]:
    """Ask for a rebuild (admins only); a rebuild already waiting or running is returned instead of a second one."""
    if actor.get("role") != "admin":
        raise PermissionDenied("Seul un superviseur peut reconstruire les statistiques.")
    active = session.scalar(
        select(RebuildRun).where(RebuildRun.status.in_(ACTIVE)).order_by(RebuildRun.requested_at.desc())
    )
    if active is not None:
        return run_to_dict(active)
    run = RebuildRun(
        status="requested", requested_by=actor.get("id"), requested_at=utcnow(), updated_at=utcnow()
    )
    session.add(run)
    session.flush()
    return run_to_dict(run)


def rebuild_status(session: Session, *, actor: dict[str, Any]) -> dict[str, Any]:
    """The latest rebuild and the projection's size (staff only)."""
    if actor.get("role") not in ("admin", "agent"):
        raise PermissionDenied("Accès réservé à l'équipe support.")
    latest = session.scalar(select(RebuildRun).order_by(RebuildRun.requested_at.desc()))
    return {"rebuild": run_to_dict(latest), **projection.counts(session)}


def claim_run(session: Session) -> RebuildRun | None:
    """Take a requested (or abandoned) rebuild for this instance, or None."""
    stale = utcnow() - STALE_AFTER
    run = session.scalar(
        select(RebuildRun)
        .where(
            or_(
                RebuildRun.status == "requested",
                (RebuildRun.status == "running") & (RebuildRun.updated_at < stale),
            )
        )
        .order_by(RebuildRun.requested_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if run is None:
        return None
    run.status = "running"
    run.started_at = run.updated_at = utcnow()
    run.last_seq = run.events_replayed = 0
    run.error = None
    session.flush()
    return run


def run(
    session: Session, run: RebuildRun, fetch: FetchPage, commit: Callable[[], None], page_size: int = 500
) -> None:
    """Clear the projection and replay the whole history into it, committing after each page."""
    projection.clear(session)
    commit()
    after_seq = 0
    while True:
        page = fetch(after_seq, page_size)
        events = [Event.from_envelope(envelope) for envelope in page.get("events") or []]
        projection.apply_events(session, events)
        after_seq = int(page.get("last_seq") or after_seq)
        run.last_seq = after_seq
        run.events_replayed += len(events)
        run.updated_at = utcnow()
        commit()
        if not page.get("more") or not events:
            break
    run.status = "done"
    run.finished_at = run.updated_at = utcnow()
    commit()


def mark_failed(session: Session, run_id: str, error: BaseException) -> None:
    failed = session.get(RebuildRun, run_id)
    if failed is not None:
        failed.status = "failed"
        failed.error = f"{type(error).__name__}: {error}"[:2000]
        failed.finished_at = failed.updated_at = utcnow()
