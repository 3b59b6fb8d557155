"""Daily rollups of the ticket facts: what a period report sums instead of reading every ticket of the period.

Each fact contributes to ``report_days`` twice — its created-side figures to the row of its creation day, its
closed-side figures to the row of its (final) closing day — and to ``report_agent_days`` once per current assignee.
The projection keeps them up to date in the same transaction as the facts: when it recomputes a ticket, it takes the
old fact's contribution out and the new one in (``apply_changes``), so the rollups always equal the sum of the facts.
``fact_rows`` is the same definition in SQL, per fact: the reports read it instead of the rollups when they must
filter by something the rollups do not keep (customer, sales rep's customers, agent), and ``refill`` rebuilds the
rollups from it (migration, benchmark data sets); a test checks that both definitions agree.

``report_duration_months`` counts each fact's durations per month, priority and bucket (``durations.py``), for the
percentiles of long periods: the first response in the month of creation, the resolution in the month of closing.

Durations are summed in whole milliseconds (``floor(seconds × 1000 + 0.5)``) so that adding and removing a
contribution is exact; a mean is then exact to the millisecond, far below the hundredth of an hour reports show.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from comptoir_common.db import dialect_insert, is_postgres
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Select,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from comptoir_reports.durations import duration_bucket
from comptoir_reports.models import (
    DURATION_DAYS,
    ReportAgentDay,
    ReportDay,
    ReportDurationMonth,
    TicketAssignee,
    TicketFact,
)

DAY_KEYS = ("day", "type", "priority", "status", "status_label")
AGENT_KEYS = ("day", "agent_id")
DURATION_KEYS = ("duration", "month", "priority", "bucket")
DURATION_MEASURES = ("count", "total_ms")
# measure: (python value from a fact, SQL value from ticket_facts); ``ms`` turns seconds into whole milliseconds.
Measure = tuple[Callable[[Mapping[str, Any]], int], Callable[[Callable], ColumnElement]]
F = TicketFact


def ms(seconds: float | None) -> int:
    return 0 if seconds is None else int(seconds * 1000 + 0.5)


def _flag(condition: ColumnElement[bool]) -> ColumnElement:
    return case((condition, 1), else_=0)


CREATED_MEASURES: dict[str, Measure] = {
    "created": (lambda f: 1, lambda ms_: literal(1)),
    "open": (lambda f: int(not f["is_closed"]), lambda ms_: _flag(F.is_closed.is_(False))),
    "open_unassigned": (
        lambda f: int(not f["is_closed"] and not f["assignee_ids"]),
        lambda ms_: _flag(F.is_closed.is_(False) & (func.json_array_length(F.assignee_ids) == 0)),
    ),
    "closed_now": (lambda f: int(bool(f["is_closed"])), lambda ms_: _flag(F.is_closed.is_(True))),
    "created_resolved": (
        lambda f: int(f["resolution_seconds"] is not None),
        lambda ms_: _flag(F.resolution_seconds.is_not(None)),
    ),
    "created_resolution_ms": (lambda f: ms(f["resolution_seconds"]), lambda ms_: ms_(F.resolution_seconds)),
    "created_resolution_business_ms": (
        lambda f: ms(f["resolution_business_seconds"]),
        lambda ms_: ms_(F.resolution_business_seconds),
    ),
    "reopened": (lambda f: int(f["reopen_count"] > 0), lambda ms_: _flag(F.reopen_count > 0)),
    "reopens": (lambda f: int(f["reopen_count"]), lambda ms_: F.reopen_count),
    "closed_once": (
        lambda f: int(f["first_closed_at"] is not None),
        lambda ms_: _flag(F.first_closed_at.is_not(None)),
    ),
    "sla_met": (lambda f: int(f["sla_status"] == "met"), lambda ms_: _flag(F.sla_status == "met")),
    "sla_breached": (
        lambda f: int(f["sla_status"] == "breached"),
        lambda ms_: _flag(F.sla_status == "breached"),
    ),
    "unanswered": (
        lambda f: int(f["first_response_at"] is None),
        lambda ms_: _flag(F.first_response_at.is_(None)),
    ),
}
CLOSED_MEASURES: dict[str, Measure] = {
    "closed": (lambda f: 1, lambda ms_: literal(1)),
    "resolution_ms": (lambda f: ms(f["resolution_seconds"]), lambda ms_: ms_(F.resolution_seconds)),
    "resolution_business_ms": (
        lambda f: ms(f["resolution_business_seconds"]),
        lambda ms_: ms_(F.resolution_business_seconds),
    ),
}
AGENT_CREATED_MEASURES: dict[str, Measure] = {
    "assigned": CREATED_MEASURES["created"],
    "open": CREATED_MEASURES["open"],
}
AGENT_CLOSED_MEASURES = CLOSED_MEASURES
DAY_MEASURES = (*CREATED_MEASURES, *CLOSED_MEASURES)
AGENT_MEASURES = (*AGENT_CREATED_MEASURES, *AGENT_CLOSED_MEASURES)
# The fact columns a contribution reads.
FACT_FIELDS = (
    "created_day",
    "closed_day",
    "type",
    "priority",
    "status",
    "status_label",
    "is_closed",
    "assignee_ids",
    "resolution_seconds",
    "resolution_business_seconds",
    "reopen_count",
    "first_closed_at",
    "sla_status",
    "first_response_at",
    "first_response_seconds",
    "first_response_business_seconds",
)


def fact_values(fact: TicketFact) -> dict[str, Any]:
    """What a fact contributes from, read before the fact is changed."""
    return {field: getattr(fact, field) for field in FACT_FIELDS}


def _day_key(f: Mapping[str, Any], day) -> tuple:
    return (day, f["type"] or "", f["priority"] or "", f["status"] or "", f["status_label"] or "")


def month_of(day):
    return day.replace(day=1)


def _contribute(changes, f: Mapping[str, Any], sign: int) -> None:
    days, agents, durations = changes
    created = f["created_day"]
    closed = f["closed_day"] if f["resolution_seconds"] is not None else None
    sides = [(created, CREATED_MEASURES, AGENT_CREATED_MEASURES)]
    if closed is not None:
        sides.append((closed, CLOSED_MEASURES, AGENT_CLOSED_MEASURES))
    for day, measures, agent_measures in sides:
        row = days[_day_key(f, day)]
        for name, (value, _sql) in measures.items():
            row[name] += sign * value(f)
        for agent_id in f["assignee_ids"] or []:
            row = agents[(day, agent_id)]
            for name, (value, _sql) in agent_measures.items():
                row[name] += sign * value(f)
    for duration, day_field in DURATION_DAYS.items():
        # The same rows as the fact path of the percentiles reads: a first response on a ticket's creation day, a
        # resolution on its (final) closing day, only where the wall-clock duration is known.
        wall = duration.removesuffix("_business")
        seconds, day = f[f"{duration}_seconds"], f[day_field]
        if seconds is None or day is None or f[f"{wall}_seconds"] is None:
            continue
        row = durations[(duration, month_of(day), f["priority"] or "", duration_bucket(seconds))]
        row["count"] += sign
        row["total_ms"] += sign * ms(seconds)


def apply_changes(
    session: Session, changes: Iterable[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]]
) -> None:
    """Take ``(old fact values or None, new fact values or None)`` pairs into the rollups, in a few statements."""
    totals = tuple(defaultdict(lambda: defaultdict(int)) for _ in range(3))
    for old, new in changes:
        if old is not None:
            _contribute(totals, old, -1)
        if new is not None:
            _contribute(totals, new, +1)
    for model, keys, measures, rows in (
        (ReportDay, DAY_KEYS, DAY_MEASURES, totals[0]),
        (ReportAgentDay, AGENT_KEYS, AGENT_MEASURES, totals[1]),
        (ReportDurationMonth, DURATION_KEYS, DURATION_MEASURES, totals[2]),
    ):
        # Sorted, so that two transactions touching the same rows lock them in the same order (no deadlock).
        values = [
            {**dict(zip(keys, key, strict=True)), **{name: delta.get(name, 0) for name in measures}}
            for key, delta in sorted(rows.items(), key=lambda item: tuple(map(str, item[0])))
            if any(delta.values())
        ]
        if values:
            # One cached statement, many parameter sets (sent as multi-row INSERTs): building and compiling a
            # statement for each batch of values cost half of the projection's time per event (measured).
            session.execute(_upsert(session, model, keys, measures), values)


_UPSERTS: dict[tuple[str, type], Any] = {}


def _upsert(session: Session, model, keys: tuple[str, ...], measures: tuple[str, ...]):
    """``INSERT … ON CONFLICT (keys) DO UPDATE SET measure = measure + excluded.measure`` for ``model``."""
    dialect = session.get_bind().dialect.name
    statement = _UPSERTS.get((dialect, model))
    if statement is None:
        table = model.__table__
        insert = dialect_insert(session)(table)
        statement = insert.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: table.c[name] + insert.excluded[name] for name in measures},
        )
        _UPSERTS[(dialect, model)] = statement
    return statement


def _ms_sql(session: Session) -> Callable[[ColumnElement], ColumnElement]:
    def to_ms(column: ColumnElement) -> ColumnElement:
        scaled = func.coalesce(column, 0) * 1000 + 0.5
        # PostgreSQL rounds when casting a float to an integer, SQLite truncates: floor first on PostgreSQL.
        return cast(func.floor(scaled) if is_postgres(session) else scaled, BigInteger)

    return to_ms


def _keys_sql(day: ColumnElement) -> list[ColumnElement]:
    return [
        day.label("day"),
        func.coalesce(F.type, "").label("type"),
        func.coalesce(F.priority, "").label("priority"),
        func.coalesce(F.status, "").label("status"),
        func.coalesce(F.status_label, "").label("status_label"),
    ]


def _branch(session: Session, keys, own: dict[str, Measure], every: Iterable[str], clauses) -> Select:
    to_ms = _ms_sql(session)
    columns = [
        (own[name][1](to_ms) if name in own else literal(0)).label(name)  # the other side's measures are 0
        for name in every
    ]
    return select(*keys, *columns).where(*clauses)


def fact_rows(session: Session, created_clauses, closed_clauses):
    """Per fact, its contributions to ``report_days`` (columns ``DAY_KEYS`` + ``DAY_MEASURES``), restricted by
    the given clauses on ``ticket_facts`` (the created side filtered on the creation day, the closed side on the
    closing day)."""
    created = _branch(session, _keys_sql(F.created_day), CREATED_MEASURES, DAY_MEASURES, created_clauses)
    closed = _branch(
        session,
        _keys_sql(F.closed_day),
        CLOSED_MEASURES,
        DAY_MEASURES,
        [*closed_clauses, F.resolution_seconds.is_not(None)],
    )
    return union_all(created, closed).subquery()


def _agent_branch(session: Session, day, own, clauses) -> Select:
    """One row per (fact, current assignee). On PostgreSQL the assignee list stored on each fact is unnested (a
    join with ``ticket_assignees`` costs a scan of the whole table); elsewhere the join is used."""
    if is_postgres(session):
        agent = func.json_array_elements_text(F.assignee_ids).table_valued("value").render_derived()
        keys = [day.label("day"), agent.c.value.label("agent_id")]
        return _branch(session, keys, own, AGENT_MEASURES, clauses).select_from(F).join(agent, true())
    keys = [day.label("day"), TicketAssignee.agent_id.label("agent_id")]
    return (
        _branch(session, keys, own, AGENT_MEASURES, clauses)
        .select_from(F)
        .join(TicketAssignee, TicketAssignee.ticket_id == F.ticket_id)
    )


def agent_fact_rows(session: Session, created_clauses, closed_clauses):
    """Per (fact, current assignee), its contributions to ``report_agent_days``."""
    created = _agent_branch(session, F.created_day, AGENT_CREATED_MEASURES, created_clauses)
    closed = _agent_branch(
        session, F.closed_day, AGENT_CLOSED_MEASURES, [*closed_clauses, F.resolution_seconds.is_not(None)]
    )
    return union_all(created, closed).subquery()


def refill(session: Session) -> None:
    """Recompute the rollups from the facts, in three statements (a migration, a benchmark's generated facts)."""
    clear(session)
    for model, keys, measures, rows in (
        (ReportDay, DAY_KEYS, DAY_MEASURES, fact_rows(session, [], [])),
        (ReportAgentDay, AGENT_KEYS, AGENT_MEASURES, agent_fact_rows(session, [], [])),
    ):
        grouped = select(
            *(rows.c[key] for key in keys), *(func.sum(rows.c[name]) for name in measures)
        ).group_by(*(rows.c[key] for key in keys))
        session.execute(model.__table__.insert().from_select([*keys, *measures], grouped))
    durations = duration_fact_rows(session)
    grouped = select(
        *(durations.c[key] for key in DURATION_KEYS), func.count(), func.sum(durations.c.ms)
    ).group_by(*(durations.c[key] for key in DURATION_KEYS))
    session.execute(
        ReportDurationMonth.__table__.insert().from_select([*DURATION_KEYS, *DURATION_MEASURES], grouped)
    )


def month_sql(session: Session, day: ColumnElement) -> ColumnElement:
    """The first day of ``day``'s month, in SQL."""
    if is_postgres(session):
        return cast(func.date_trunc("month", day), Date)
    return func.date(day, "start of month")


def duration_fact_rows(session: Session):
    """Per fact and duration, its contribution to ``report_duration_months`` (columns ``DURATION_KEYS`` + ``ms``),
    from the buckets stored on the facts."""
    to_ms = _ms_sql(session)
    branches = []
    for duration, day_field in DURATION_DAYS.items():
        day = getattr(F, day_field)
        seconds = getattr(F, f"{duration}_seconds")
        wall = getattr(F, f"{duration.removesuffix('_business')}_seconds")
        branches.append(
            select(
                literal(duration).label("duration"),
                month_sql(session, day).label("month"),
                func.coalesce(F.priority, "").label("priority"),
                getattr(F, f"{duration}_bucket").label("bucket"),
                to_ms(seconds).label("ms"),
            ).where(seconds.is_not(None), wall.is_not(None), day.is_not(None))
        )
    return union_all(*branches).subquery()


def fill_buckets(session: Session, batch: int = 10_000) -> int:
    """Set the duration buckets of facts stored without them (facts projected before buckets existed, a
    benchmark's generated facts), in pages; returns how many facts were updated."""
    seconds = [getattr(F, f"{duration}_seconds") for duration in DURATION_DAYS]
    buckets = [f"{duration}_bucket" for duration in DURATION_DAYS]
    after, updated = "", 0
    while True:
        rows = session.execute(
            select(F.ticket_id, *seconds)
            .where(F.ticket_id > after, or_(*(column.is_not(None) for column in seconds)))
            .order_by(F.ticket_id)
            .limit(batch)
        ).all()
        if not rows:
            return updated
        session.execute(
            update(F),
            [
                {"ticket_id": ticket_id, **dict(zip(buckets, map(duration_bucket, values), strict=True))}
                for ticket_id, *values in rows
            ],
        )
        updated += len(rows)
        after = rows[-1][0]


def clear(session: Session) -> None:
    for model in (ReportDay, ReportAgentDay, ReportDurationMonth):
        session.execute(delete(model))


def table_rows(session: Session, model) -> dict[tuple, dict[str, int]]:
    """The rollup's rows that count (all-zero rows left by tickets that moved away are skipped), for comparisons."""
    keys, measures = {
        ReportDay: (DAY_KEYS, DAY_MEASURES),
        ReportAgentDay: (AGENT_KEYS, AGENT_MEASURES),
        ReportDurationMonth: (DURATION_KEYS, DURATION_MEASURES),
    }[model]
    found = {}
    for row in session.scalars(select(model)):
        values = {name: getattr(row, name) for name in measures}
        if any(values.values()):
            found[tuple(getattr(row, key) for key in keys)] = values
    return found
