"""The reports: aggregate queries over ``ticket_facts``, filtered and scoped to what the caller may see.

Every report takes the same filters (period, customer, type, priority, agent) and answers the same shape::

    {"key", "title", "description", "filters", "columns": [{"key", "label", "kind"}], "rows": [{...}],
     "chart": {"kind": "bar" | "line", "x": column key, "series": [column keys]} | None}

Column kinds: ``text``, ``int``, ``hours`` (decimal hours), ``percent``. The period applies to the day the report is
about: the creation day for volumes and backlogs, the (final) closing day for resolution figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from typing import Any

from comptoir_common.db import is_postgres, utcnow
from comptoir_common.errors import InvalidInput, NotFound, PermissionDenied
from sqlalchemy import ColumnElement, case, func, or_, select, text, tuple_
from sqlalchemy.orm import Session, aliased

from comptoir_reports import policy, rollups
from comptoir_reports.models import (
    DURATION_DAYS,
    Customer,
    DimensionValue,
    ReportAgentDay,
    ReportDay,
    ReportDurationMonth,
    TicketAssignee,
    TicketFact,
    User,
)
from comptoir_reports.projection import local_day

GRANULARITIES = ("day", "week", "month")
DEFAULT_PERIOD_DAYS = 90
MAX_PERIOD_DAYS = 3660
MAX_ROWS = 1000
TOP_CUSTOMERS = 20
ALL_LABEL = "Toutes"
UNKNOWN_CUSTOMER = "Non identifié"
UNASSIGNED = "Non assigné"
# Usual priority keys in their natural order; others follow alphabetically.
PRIORITY_ORDER = ["urgent", "urgente", "high", "haute", "normal", "normale", "low", "basse"]


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    customer_id: str | None = None
    type: str | None = None
    priority: str | None = None
    agent_id: str | None = None
    granularity: str = "day"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        return data


def _parse_day(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidInput(f"Date invalide pour « {name} » : attendu AAAA-MM-JJ.") from exc


def _parse_text(value: Any, name: str) -> str | None:
    if value in (None, ""):
        return None
    value = str(value).strip()
    if len(value) > 100:
        raise InvalidInput(f"Valeur trop longue pour « {name} ».")
    return value or None


def parse_filters(raw: dict[str, Any] | None, today: date | None = None) -> Filters:
    """Filters from a request's parameters; without a period, the last 90 days up to today (Paris)."""
    raw = raw or {}
    unknown = set(raw) - {"start", "end", "customer_id", "type", "priority", "agent_id", "granularity"}
    if unknown:
        raise InvalidInput(f"Filtre inconnu : {', '.join(sorted(unknown))}.")
    today = today or local_day(utcnow())
    end = _parse_day(raw.get("end"), "fin") or today
    start = _parse_day(raw.get("start"), "début") or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if start > end:
        raise InvalidInput("La date de début doit précéder la date de fin.")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise InvalidInput("La période ne peut pas dépasser dix ans.")
    granularity = raw.get("granularity") or "day"
    if granularity not in GRANULARITIES:
        raise InvalidInput("Granularité invalide : jour (day), semaine (week) ou mois (month).")
    return Filters(
        start=start,
        end=end,
        customer_id=_parse_text(raw.get("customer_id"), "client"),
        type=_parse_text(raw.get("type"), "type"),
        priority=_parse_text(raw.get("priority"), "priorité"),
        agent_id=_parse_text(raw.get("agent_id"), "technicien"),
        granularity=granularity,
    )


def _where(scope: policy.Scope, filters: Filters, day_column) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [day_column >= filters.start, day_column <= filters.end]
    if scope.clause is not None:
        clauses.append(scope.clause)
    if filters.customer_id:
        clauses.append(TicketFact.customer_id == filters.customer_id)
    if filters.type:
        clauses.append(TicketFact.type == filters.type)
    if filters.priority:
        clauses.append(TicketFact.priority == filters.priority)
    if filters.agent_id:
        # The agent's tickets of the period, through the assignees' copy of the days (an alias, so that reports
        # which also join the assignees keep their own join).
        assigned = aliased(TicketAssignee)
        assigned_day = getattr(assigned, day_column.key)
        clauses.append(
            TicketFact.ticket_id.in_(
                select(assigned.ticket_id).where(
                    assigned.agent_id == filters.agent_id,
                    assigned_day >= filters.start,
                    assigned_day <= filters.end,
                )
            )
        )
    return clauses


def _from_rollups(scope: policy.Scope, filters: Filters, *, per_agent: bool = False) -> bool:
    """Whether the daily rollups can answer: they keep no customer (so neither a customer filter nor a sales rep's
    or client's scope), ``report_days`` no agent, ``report_agent_days`` no type or priority."""
    if scope.clause is not None or filters.customer_id:
        return False
    return not (filters.type or filters.priority) if per_agent else not filters.agent_id


def _days(session: Session, scope: policy.Scope, filters: Filters):
    """The rows to sum for the period figures (columns of ``report_days``): the rollup's days of the period when
    it can answer, else each matching fact's contribution (``rollups.fact_rows``) — the same figures either way."""
    if _from_rollups(scope, filters):
        clauses = [ReportDay.day >= filters.start, ReportDay.day <= filters.end]
        if filters.type:
            clauses.append(ReportDay.type == filters.type)
        if filters.priority:
            clauses.append(ReportDay.priority == filters.priority)
        return select(ReportDay).where(*clauses).subquery()
    return rollups.fact_rows(
        session, _where(scope, filters, TicketFact.created_day), _where(scope, filters, TicketFact.closed_day)
    )


def _agent_days(session: Session, scope: policy.Scope, filters: Filters):
    """As ``_days``, per current assignee (columns of ``report_agent_days``)."""
    if _from_rollups(scope, filters, per_agent=True):
        clauses = [ReportAgentDay.day >= filters.start, ReportAgentDay.day <= filters.end]
        if filters.agent_id:
            clauses.append(ReportAgentDay.agent_id == filters.agent_id)
        return select(ReportAgentDay).where(*clauses).subquery()
    return rollups.agent_fact_rows(
        session, _where(scope, filters, TicketFact.created_day), _where(scope, filters, TicketFact.closed_day)
    )


def _key(value: str | None) -> str | None:
    """A dimension read from a rollup, where a missing one is stored as ''."""
    return value or None


def _int(value: Any) -> int:
    return int(value or 0)


def _mean_hours(total_ms: Any, count: Any) -> float | None:
    return None if not count else round(int(total_ms or 0) / int(count) / 3_600_000, 2)


def _by_count_then_key(rows, count_index: int = 1):
    """Largest count first, then by key (a missing key last)."""
    return sorted(rows, key=lambda row: (-row[count_index], row[0] is None, row[0] or ""))


def _hours(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds) / 3600, 2)


def _percent(part: int, whole: int) -> float | None:
    return None if not whole else round(100.0 * part / whole, 1)


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not values:
        return None
    position = q * (len(values) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    return values[lower] + (values[upper] - values[lower]) * (position - lower)


TOTAL = "__all__"


QUANTILES = {"median": 0.5, "p90": 0.9}
CLOCKS = ("wall", "business")


def _ranks(count: int, q: float) -> tuple[int, int, float]:
    """The two ranks (0-based) percentile_cont interpolates between, and the weight of the second."""
    position = q * (count - 1)
    return math.floor(position), math.ceil(position), position - math.floor(position)


def _whole_months(filters: Filters) -> tuple[date, date] | None:
    """The first days of the first and last months lying wholly inside the period, if any."""
    first = (
        filters.start
        if filters.start.day == 1
        else (filters.start.replace(day=28) + timedelta(days=4)).replace(day=1)
    )
    after_end = filters.end + timedelta(days=1)
    last = (after_end if after_end.day == 1 else filters.end.replace(day=1)) - timedelta(days=1)
    last = last.replace(day=1)
    return (first, last) if first <= last else None


class _BucketCounts:
    """Values per (clock, priority or TOTAL): their count and sum, and how many fall in each bucket."""

    def __init__(self) -> None:
        self.per_bucket: dict[tuple[str, Any], dict[int, int]] = {}
        self.totals: dict[tuple[str, Any], list[float]] = {}

    def add(self, clock: str, priority: str | None, bucket: int, count: int, seconds: float) -> None:
        for key in (priority, TOTAL):
            counts = self.per_bucket.setdefault((clock, key), {})
            counts[bucket] = counts.get(bucket, 0) + count
            total = self.totals.setdefault((clock, key), [0, 0.0])
            total[0] += count
            total[1] += seconds

    def places(self) -> dict[tuple[str, Any, str], tuple[tuple[int, int], tuple[int, int], float]]:
        """For each wanted quantile: the (bucket, rank inside the bucket) of the two values it interpolates
        between, and the weight of the second."""
        wanted = {}
        for (clock, key), counts in self.per_bucket.items():
            ordered = sorted(counts.items())
            for name, q in QUANTILES.items():
                low, high, weight = _ranks(int(self.totals[(clock, key)][0]), q)
                places = []
                for rank in (low, high):
                    seen = 0
                    for bucket, count in ordered:
                        if rank < seen + count:
                            places.append((bucket, rank - seen))
                            break
                        seen += count
                wanted[(clock, key, name)] = (places[0], places[1], weight)
        return wanted


def _count_facts(session: Session, columns: dict[str, tuple], clauses, found: _BucketCounts) -> None:
    """Count the facts' values per (priority, bucket) for every clock at once (an index-only scan hashed by
    grouping sets)."""
    buckets = [bucket for _, bucket in columns.values()]
    rows = (
        session.connection()
        .execute(
            select(
                TicketFact.priority,
                *buckets,
                *(func.grouping(bucket) for bucket in buckets),
                func.count(),
                *(func.sum(seconds) for seconds, _ in columns.values()),
            )
            .where(*clauses)
            .group_by(func.grouping_sets(*(tuple_(TicketFact.priority, bucket) for bucket in buckets)))
        )
        .all()
    )
    clocks = list(columns)
    width = len(clocks)
    for priority, *values in rows:
        numbers, grouped, count, sums = (
            values[:width],
            values[width : 2 * width],
            values[2 * width],
            values[2 * width + 1 :],
        )
        index = grouped.index(0)  # the grouping set of this row: the one bucket grouped on
        if numbers[index] is not None:  # None: the rows without this duration
            found.add(clocks[index], priority, numbers[index], count, sums[index])


def _duration_stats(session: Session, scope, filters: Filters, duration: str) -> dict[Any, dict[str, Any]]:
    """count, mean, median and p90 of a duration (``first_response`` or ``resolution``) in wall-clock and business
    seconds, per priority and in total (key ``TOTAL``), over the period's facts where it is known — exactly as
    PostgreSQL's ``percentile_cont`` would compute them."""
    day_column = getattr(TicketFact, DURATION_DAYS[duration])
    names = {"wall": duration, "business": f"{duration}_business"}
    columns = {
        clock: (getattr(TicketFact, f"{name}_seconds"), getattr(TicketFact, f"{name}_bucket"))
        for clock, name in names.items()
    }
    if not is_postgres(session):
        clauses = [*_where(scope, filters, day_column), columns["wall"][0].is_not(None)]
        return _duration_stats_sorted(session, columns, clauses)
    # The counts and the values are read by separate statements: a ticket changing in between makes them disagree,
    # which the values' lengths reveal; the figures are then read again (rare: a ticket of the period changing
    # within those few milliseconds).
    for _ in range(RECOUNTS):
        try:
            return _bucketed_duration_stats(session, scope, filters, day_column, names, columns)
        except _CountsMoved:
            continue
    raise _CountsMoved("the durations kept changing while the percentiles were read")


RECOUNTS = 5


class _CountsMoved(RuntimeError):
    """The values read for a bucket are not as many as counted: the facts changed between the statements."""


def _bucketed_duration_stats(
    session: Session, scope, filters: Filters, day_column, names: dict, columns: dict
) -> dict[Any, dict[str, Any]]:
    """``_duration_stats`` on PostgreSQL, by buckets (see durations.py)."""
    # A business duration is known exactly where its wall-clock one is (both end at the same moment), and the
    # facts without a duration have no bucket: counting and reading by bucket needs no "is known" clause, which
    # keeps the scans index-only.
    found = _BucketCounts()
    months = _whole_months(filters) if _from_rollups(scope, filters) and not filters.type else None
    if months is None:
        _count_facts(session, columns, _where(scope, filters, day_column), found)
    else:
        # Whole months from the monthly rollup, the days before and after them from the facts.
        first, last = months
        clock_of = {name: clock for clock, name in names.items()}
        monthly = [
            ReportDurationMonth.duration.in_(list(names.values())),
            ReportDurationMonth.month >= first,
            ReportDurationMonth.month <= last,
        ]
        if filters.priority:
            monthly.append(ReportDurationMonth.priority == filters.priority)
        for name, priority, bucket, count, total_ms in session.connection().execute(
            select(
                ReportDurationMonth.duration,
                ReportDurationMonth.priority,
                ReportDurationMonth.bucket,
                func.sum(ReportDurationMonth.count),
                func.sum(ReportDurationMonth.total_ms),
            )
            .where(*monthly)
            .group_by(ReportDurationMonth.duration, ReportDurationMonth.priority, ReportDurationMonth.bucket)
            .having(func.sum(ReportDurationMonth.count) > 0)
        ):
            found.add(clock_of[name], priority or None, bucket, int(count), int(total_ms) / 1000)
        after_last = (last + timedelta(days=32)).replace(day=1)
        for edge_start, edge_end in (
            (filters.start, first - timedelta(days=1)),
            (after_last, filters.end),
        ):
            if edge_start <= edge_end:
                edge = replace(filters, start=edge_start, end=edge_end)
                _count_facts(session, columns, _where(scope, edge, day_column), found)
    wanted = found.places()
    # The values of the buckets holding the wanted ranks, one index-only scan per clock.
    values: dict[tuple[str, Any, int], list[float]] = {}
    for clock, (seconds, bucket) in columns.items():
        needed = sorted({place[i][0] for (c, _, _), place in wanted.items() if c == clock for i in (0, 1)})
        if not needed:
            continue
        for priority, number, value in session.connection().execute(
            select(TicketFact.priority, bucket, seconds).where(
                *_where(scope, filters, day_column), bucket.in_(needed)
            )
        ):
            for key in (priority, TOTAL):
                values.setdefault((clock, key, number), []).append(value)
    for (clock, key, number), found_values in values.items():
        if len(found_values) != found.per_bucket.get((clock, key), {}).get(number):
            raise _CountsMoved(f"{clock} bucket {number}")
        found_values.sort()
    for (clock, key, _), place in wanted.items():
        for bucket, _rank in place[:2]:
            if (clock, key, bucket) not in values:
                raise _CountsMoved(f"{clock} bucket {bucket}")
    result: dict[Any, dict[str, Any]] = {}
    for clock in CLOCKS:
        for (c, key), (count, total) in found.totals.items():
            if c != clock:
                continue
            stats: dict[str, Any] = {"count": count, "mean": total / count}
            for name in QUANTILES:
                (low_bucket, low_rank), (high_bucket, high_rank), weight = wanted[(clock, key, name)]
                low = values[(clock, key, low_bucket)][low_rank]
                high = values[(clock, key, high_bucket)][high_rank]
                stats[name] = low + (high - low) * weight
            entry = result.setdefault(key, {"count": 0, "wall": {}, "business": {}})
            if clock == "wall":
                entry["count"] = count
            entry[clock] = stats
    return result


def _duration_stats_sorted(session: Session, columns, clauses) -> dict[Any, dict[str, Any]]:
    """As ``_duration_stats``, by sorting every value (SQLite: development stores)."""
    groups: dict[Any, tuple[list[float], list[float]]] = {}
    for priority, wall, business in session.execute(
        select(TicketFact.priority, columns["wall"][0], columns["business"][0]).where(*clauses)
    ):
        for key in (priority, TOTAL):
            walls, businesses = groups.setdefault(key, ([], []))
            walls.append(float(wall))
            if business is not None:
                businesses.append(float(business))
    result: dict[Any, dict[str, Any]] = {}
    for key, (walls, businesses) in groups.items():
        stats: dict[str, Any] = {"count": len(walls)}
        for clock, values in (("wall", sorted(walls)), ("business", sorted(businesses))):
            stats[clock] = (
                {
                    "count": len(values),
                    "mean": sum(values) / len(values),
                    "median": _percentile(values, 0.5),
                    "p90": _percentile(values, 0.9),
                }
                if values
                else {}
            )
        result[key] = stats
    return result


def _labels(session: Session, dimension: str) -> dict[str, str]:
    return {
        row.value: row.label or row.value
        for row in session.scalars(select(DimensionValue).where(DimensionValue.dimension == dimension))
    }


def _customer_names(session: Session, ids) -> dict[str, str]:
    ids = [customer_id for customer_id in set(ids) if customer_id]
    names: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        for customer_id, name in session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_(ids[start : start + 500]))
        ):
            names[customer_id] = name
    return names


def _customer_label(names: dict[str, str], customer_id: str | None) -> str:
    if not customer_id:
        return UNKNOWN_CUSTOMER
    return names.get(customer_id) or f"Client {customer_id[:8]}"


def _agent_names(session: Session, ids) -> dict[str, str]:
    ids = [agent_id for agent_id in set(ids) if agent_id]
    names = {}
    for start in range(0, len(ids), 500):
        for user_id, name in session.execute(
            select(User.id, User.name).where(User.id.in_(ids[start : start + 500]))
        ):
            if name:
                names[user_id] = name
    missing = [agent_id for agent_id in ids if agent_id not in names]
    if missing:
        for agent_id, name in session.execute(
            select(TicketAssignee.agent_id, func.max(TicketAssignee.agent_name))
            .where(TicketAssignee.agent_id.in_(missing[:500]))
            .group_by(TicketAssignee.agent_id)
        ):
            if name:
                names[agent_id] = name
    return names


def _priority_sort_key(key: Any) -> tuple[int, str]:
    if key is None:
        return (len(PRIORITY_ORDER) + 1, "")
    lowered = str(key).lower()
    return (PRIORITY_ORDER.index(lowered) if lowered in PRIORITY_ORDER else len(PRIORITY_ORDER), lowered)


def report_summary(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    days = _days(session, scope, filters)
    created, still_open, reopened, closed, total_ms, total_business_ms = session.execute(
        select(
            *(
                func.sum(days.c[name])
                for name in (
                    "created",
                    "open",
                    "reopened",
                    "closed",
                    "resolution_ms",
                    "resolution_business_ms",
                )
            )
        )
    ).one()
    return {
        "columns": [
            ("created", "Demandes créées", "int"),
            ("closed", "Demandes clôturées", "int"),
            ("open", "Encore ouvertes", "int"),
            ("reopened", "Rouvertes", "int"),
            ("mean_resolution_hours", "Résolution moyenne (h)", "hours"),
            ("mean_resolution_business_hours", "Résolution moyenne (h ouvrées)", "hours"),
        ],
        "rows": [
            {
                "created": _int(created),
                "closed": _int(closed),
                "open": _int(still_open),
                "reopened": _int(reopened),
                "mean_resolution_hours": _mean_hours(total_ms, closed),
                "mean_resolution_business_hours": _mean_hours(total_business_ms, closed),
            }
        ],
        "chart": None,
    }


def _bucket(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def _bucket_label(start: date, granularity: str) -> str:
    if granularity == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-S{week:02d}"
    if granularity == "month":
        return start.strftime("%Y-%m")
    return start.isoformat()


def report_volume(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    days = _days(session, scope, filters)
    per_day = session.execute(
        select(days.c.day, func.sum(days.c.created), func.sum(days.c.closed)).group_by(days.c.day)
    ).all()
    buckets: dict[date, dict[str, int]] = {}
    day = filters.start
    while day <= filters.end:
        buckets.setdefault(_bucket(day, filters.granularity), {"created": 0, "closed": 0})
        day += timedelta(days=1)
    for day, created, closed in per_day:
        bucket = buckets[_bucket(day, filters.granularity)]
        bucket["created"] += _int(created)
        bucket["closed"] += _int(closed)
    rows = [
        {"period": _bucket_label(start, filters.granularity), **values}
        for start, values in sorted(buckets.items())
    ]
    return {
        "columns": [
            ("period", "Période", "text"),
            ("created", "Créées", "int"),
            ("closed", "Clôturées", "int"),
        ],
        "rows": rows,
        "chart": {"kind": "line", "x": "period", "series": ["created", "closed"]},
    }


def report_requests_per_user(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    clauses = _where(scope, filters, TicketFact.created_day)
    count = func.count().label("count")
    # The counts first (an index-only scan of the period), then who the first MAX_ROWS requesters are.
    top = session.execute(
        select(TicketFact.requester_key, count)
        .where(*clauses)
        .group_by(TicketFact.requester_key)
        .order_by(count.desc(), TicketFact.requester_key)
        .limit(MAX_ROWS)
    ).all()
    keys = [key for key, _ in top if key is not None]
    details: dict[str | None, tuple] = {}
    for start in range(0, max(len(keys), 1), 500):
        chosen = TicketFact.requester_key.in_(keys[start : start + 500])
        if start == 0 and len(keys) < len(top):
            chosen = or_(chosen, TicketFact.requester_key.is_(None))
        for key, *found in session.execute(
            select(
                TicketFact.requester_key,
                func.max(TicketFact.requester_name),
                func.max(TicketFact.requester_email),
                func.max(TicketFact.customer_id),
            )
            .where(*clauses, chosen)
            .group_by(TicketFact.requester_key)
        ):
            details[key] = tuple(found)
    rows = [(*details.get(key, (None, None, None)), requests) for key, requests in top]
    names = _customer_names(session, [row[2] for row in rows])
    return {
        "columns": [
            ("requester", "Demandeur", "text"),
            ("email", "Adresse", "text"),
            ("customer", "Client", "text"),
            ("requests", "Demandes", "int"),
        ],
        "rows": [
            {
                "requester": name or email or "Inconnu",
                "email": email or "",
                "customer": _customer_label(names, customer_id),
                "requests": requests,
            }
            for name, email, customer_id, requests in rows
        ],
        "chart": {"kind": "bar", "x": "requester", "series": ["requests"]},
    }


def report_resolution_per_customer(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    closed = func.count().label("closed")
    rows = session.execute(
        select(
            TicketFact.customer_id,
            closed,
            func.avg(TicketFact.resolution_seconds),
            func.avg(TicketFact.resolution_business_seconds),
        )
        .where(*_where(scope, filters, TicketFact.closed_day), TicketFact.resolution_seconds.is_not(None))
        .group_by(TicketFact.customer_id)
        .order_by(closed.desc(), TicketFact.customer_id)
        .limit(MAX_ROWS)
    ).all()
    names = _customer_names(session, [row[0] for row in rows])
    return {
        "columns": [
            ("customer", "Client", "text"),
            ("closed", "Demandes clôturées", "int"),
            ("mean_hours", "Résolution moyenne (h)", "hours"),
            ("mean_business_hours", "Résolution moyenne (h ouvrées)", "hours"),
        ],
        "rows": [
            {
                "customer": _customer_label(names, customer_id),
                "closed": count,
                "mean_hours": _hours(mean),
                "mean_business_hours": _hours(mean_business),
            }
            for customer_id, count, mean, mean_business in rows
        ],
        "chart": {"kind": "bar", "x": "customer", "series": ["mean_hours", "mean_business_hours"]},
    }


def _by_priority_with_total(session: Session, build_row: Callable[[Any], dict[str, Any]], keys) -> list[dict]:
    labels = _labels(session, "priority")
    rows = []
    for key in sorted((k for k in keys if k is not None), key=_priority_sort_key):
        rows.append({"priority": labels.get(key, key), **build_row(key)})
    if None in keys:
        rows.append({"priority": "Sans priorité", **build_row(None)})
    rows.append({"priority": ALL_LABEL, **build_row(TOTAL)})
    return rows


def _duration_report(session: Session, scope, filters, duration: str) -> list[dict]:
    stats = _duration_stats(session, scope, filters, duration)

    def build(key):
        found = stats.get(key) or {}
        wall, business = found.get("wall") or {}, found.get("business") or {}
        return {
            "count": found.get("count", 0),
            "mean_hours": _hours(wall.get("mean")),
            "median_hours": _hours(wall.get("median")),
            "p90_hours": _hours(wall.get("p90")),
            "mean_business_hours": _hours(business.get("mean")),
            "median_business_hours": _hours(business.get("median")),
            "p90_business_hours": _hours(business.get("p90")),
        }

    return _by_priority_with_total(session, build, set(stats) - {TOTAL})


DURATION_COLUMNS = [
    ("mean_hours", "Moyenne (h)", "hours"),
    ("median_hours", "Médiane (h)", "hours"),
    ("p90_hours", "90e centile (h)", "hours"),
    ("mean_business_hours", "Moyenne (h ouvrées)", "hours"),
    ("median_business_hours", "Médiane (h ouvrées)", "hours"),
    ("p90_business_hours", "90e centile (h ouvrées)", "hours"),
]


def report_resolution(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    rows = _duration_report(session, scope, filters, "resolution")
    return {
        "columns": [
            ("priority", "Priorité", "text"),
            ("count", "Demandes clôturées", "int"),
            *DURATION_COLUMNS,
        ],
        "rows": rows,
        "chart": {"kind": "bar", "x": "priority", "series": ["median_hours", "p90_hours"]},
    }


def report_first_response(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    rows = _duration_report(session, scope, filters, "first_response")
    days = _days(session, scope, filters)
    unanswered = func.sum(days.c.unanswered)
    waiting = {
        _key(priority): _int(count)
        for priority, count in session.execute(
            select(days.c.priority, unanswered).group_by(days.c.priority).having(unanswered > 0)
        )
    }
    labels = _labels(session, "priority")
    by_label = {labels.get(key, key) if key else "Sans priorité": count for key, count in waiting.items()}
    for row in rows:
        row["unanswered"] = (
            sum(waiting.values()) if row["priority"] == ALL_LABEL else by_label.get(row["priority"], 0)
        )
    known = {row["priority"] for row in rows}
    for label, count in by_label.items():
        if label not in known:
            empty = {key: None for key, _, _ in DURATION_COLUMNS}
            rows.insert(-1, {"priority": label, "count": 0, **empty, "unanswered": count})
    return {
        "columns": [
            ("priority", "Priorité", "text"),
            ("count", "Demandes avec réponse", "int"),
            ("unanswered", "Sans réponse", "int"),
            *DURATION_COLUMNS,
        ],
        "rows": rows,
        "chart": {"kind": "bar", "x": "priority", "series": ["median_hours", "median_business_hours"]},
    }


def report_sla(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    days = _days(session, scope, filters)
    met, breached = func.sum(days.c.sla_met), func.sum(days.c.sla_breached)
    per: dict[Any, dict[str, int]] = {
        _key(priority): {"met": _int(met_count), "breached": _int(breached_count)}
        for priority, met_count, breached_count in session.execute(
            select(days.c.priority, met, breached).group_by(days.c.priority).having(met + breached > 0)
        )
    }

    def build(key):
        if key == TOTAL:
            met = sum(values["met"] for values in per.values())
            breached = sum(values["breached"] for values in per.values())
        else:
            met, breached = per[key]["met"], per[key]["breached"]
        return {"met": met, "breached": breached, "compliance": _percent(met, met + breached)}

    return {
        "columns": [
            ("priority", "Priorité", "text"),
            ("met", "Dans les délais", "int"),
            ("breached", "Hors délais", "int"),
            ("compliance", "Respect (%)", "percent"),
        ],
        "rows": _by_priority_with_total(session, build, set(per)),
        "chart": {"kind": "bar", "x": "priority", "series": ["compliance"]},
    }


def report_backlog_status(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    days = _days(session, scope, filters)
    still_open = func.sum(days.c.open)
    rows = _by_count_then_key(
        [
            (_key(status), label, _int(count))
            for status, label, count in session.execute(
                select(days.c.status, func.max(case((days.c.open > 0, days.c.status_label))), still_open)
                .group_by(days.c.status)
                .having(still_open > 0)
            )
        ],
        count_index=2,
    )
    return {
        "columns": [("status", "Statut", "text"), ("open", "Demandes en cours", "int")],
        "rows": [{"status": label or status or "Inconnu", "open": n} for status, label, n in rows],
        "chart": {"kind": "bar", "x": "status", "series": ["open"]},
    }


def report_backlog_agent(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    agents = _agent_days(session, scope, filters)
    still_open = func.sum(agents.c.open)
    rows = [
        (agent_id, _int(count))
        for agent_id, count in session.execute(
            select(agents.c.agent_id, still_open).group_by(agents.c.agent_id).having(still_open > 0)
        )
    ]
    if not filters.agent_id:
        days = _days(session, scope, filters)
        unassigned = _int(session.scalar(select(func.sum(days.c.open_unassigned))))
        if unassigned:
            rows.append((None, unassigned))
    rows.sort(key=lambda row: (-row[1], row[0] or ""))
    names = _agent_names(session, [row[0] for row in rows])
    return {
        "columns": [("agent", "Technicien", "text"), ("open", "Demandes en cours", "int")],
        "rows": [
            {"agent": names.get(agent_id, "Inconnu") if agent_id else UNASSIGNED, "open": n}
            for agent_id, n in rows
            if not (filters.agent_id and agent_id != filters.agent_id)
        ],
        "chart": {"kind": "bar", "x": "agent", "series": ["open"]},
    }


def report_agents(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    agents = _agent_days(session, scope, filters)
    assigned, closed = func.sum(agents.c.assigned), func.sum(agents.c.closed)
    found = session.execute(
        select(
            agents.c.agent_id,
            assigned,
            closed,
            func.sum(agents.c.resolution_ms),
            func.sum(agents.c.resolution_business_ms),
        )
        .group_by(agents.c.agent_id)
        .having((assigned > 0) | (closed > 0))
    ).all()
    found = [row for row in found if not filters.agent_id or row[0] == filters.agent_id]
    names = _agent_names(session, [row[0] for row in found])
    rows = [
        {
            "agent": names.get(agent_id, "Inconnu"),
            "assigned": _int(assigned_count),
            "closed": _int(closed_count),
            "mean_hours": _mean_hours(total_ms, closed_count),
            "mean_business_hours": _mean_hours(total_business_ms, closed_count),
        }
        for agent_id, assigned_count, closed_count, total_ms, total_business_ms in found
    ]
    rows.sort(key=lambda row: (-row["assigned"], -row["closed"], row["agent"]))
    return {
        "columns": [
            ("agent", "Technicien", "text"),
            ("assigned", "Demandes assignées", "int"),
            ("closed", "Demandes clôturées", "int"),
            ("mean_hours", "Résolution moyenne (h)", "hours"),
            ("mean_business_hours", "Résolution moyenne (h ouvrées)", "hours"),
        ],
        "rows": rows,
        "chart": {"kind": "bar", "x": "agent", "series": ["assigned", "closed"]},
    }


def report_types(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    days = _days(session, scope, filters)
    created = func.sum(days.c.created)
    rows = _by_count_then_key(
        (_key(key), _int(n), *rest)
        for key, n, *rest in session.execute(
            select(
                days.c.type,
                created,
                func.sum(days.c.closed_now),
                func.sum(days.c.created_resolved),
                func.sum(days.c.created_resolution_ms),
                func.sum(days.c.created_resolution_business_ms),
            )
            .group_by(days.c.type)
            .having(created > 0)
        )
    )
    labels = _labels(session, "type")
    return {
        "columns": [
            ("type", "Type", "text"),
            ("created", "Demandes créées", "int"),
            ("closed", "Dont clôturées", "int"),
            ("mean_hours", "Résolution moyenne (h)", "hours"),
            ("mean_business_hours", "Résolution moyenne (h ouvrées)", "hours"),
        ],
        "rows": [
            {
                "type": labels.get(key, key) if key else "Sans type",
                "created": n,
                "closed": _int(closed),
                "mean_hours": _mean_hours(total_ms, resolved),
                "mean_business_hours": _mean_hours(total_business_ms, resolved),
            }
            for key, n, closed, resolved, total_ms, total_business_ms in rows
        ],
        "chart": {"kind": "bar", "x": "type", "series": ["created", "closed"]},
    }


def report_reopen_rate(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    days = _days(session, scope, filters)
    closed_once = func.sum(days.c.closed_once)
    per = {
        _key(priority): (_int(n), _int(reopened), _int(reopens))
        for priority, n, reopened, reopens in session.execute(
            select(days.c.priority, closed_once, func.sum(days.c.reopened), func.sum(days.c.reopens))
            .group_by(days.c.priority)
            .having(closed_once > 0)
        )
    }

    def build(key):
        if key == TOTAL:
            n, reopened, reopens = (sum(values[i] for values in per.values()) for i in range(3))
        else:
            n, reopened, reopens = per[key]
        return {"closed_once": n, "reopened": reopened, "reopens": reopens, "rate": _percent(reopened, n)}

    return {
        "columns": [
            ("priority", "Priorité", "text"),
            ("closed_once", "Demandes clôturées au moins une fois", "int"),
            ("reopened", "Rouvertes", "int"),
            ("reopens", "Réouvertures", "int"),
            ("rate", "Taux de réouverture (%)", "percent"),
        ],
        "rows": _by_priority_with_total(session, build, set(per)),
        "chart": {"kind": "bar", "x": "priority", "series": ["rate"]},
    }


def report_top_customers(session: Session, scope: policy.Scope, filters: Filters) -> dict[str, Any]:
    count = func.count().label("count")
    rows = session.execute(
        select(
            TicketFact.customer_id,
            count,
            func.sum(case((TicketFact.is_closed.is_(False), 1), else_=0)),
        )
        .where(*_where(scope, filters, TicketFact.created_day))
        .group_by(TicketFact.customer_id)
        .order_by(count.desc(), TicketFact.customer_id)
        .limit(TOP_CUSTOMERS)
    ).all()
    names = _customer_names(session, [row[0] for row in rows])
    return {
        "columns": [
            ("customer", "Client", "text"),
            ("created", "Demandes créées", "int"),
            ("open", "Encore ouvertes", "int"),
        ],
        "rows": [
            {"customer": _customer_label(names, customer_id), "created": n, "open": int(still_open or 0)}
            for customer_id, n, still_open in rows
        ],
        "chart": {"kind": "bar", "x": "customer", "series": ["created"]},
    }


@dataclass(frozen=True)
class ReportSpec:
    key: str
    title: str
    description: str
    build: Callable[[Session, policy.Scope, Filters], dict[str, Any]]


CATALOGUE: tuple[ReportSpec, ...] = (
    ReportSpec(
        "summary", "Synthèse", "Demandes créées, clôturées, encore ouvertes sur la période.", report_summary
    ),
    ReportSpec(
        "volume",
        "Créées et clôturées",
        "Demandes créées et clôturées par jour, semaine ou mois.",
        report_volume,
    ),
    ReportSpec(
        "requests_per_user",
        "Demandes par utilisateur",
        "Nombre de demandes soumises par chaque demandeur (date de création).",
        report_requests_per_user,
    ),
    ReportSpec(
        "resolution_per_customer",
        "Résolution moyenne par client",
        "Temps moyen entre la création et la clôture, par client (date de clôture).",
        report_resolution_per_customer,
    ),
    ReportSpec(
        "resolution",
        "Temps de résolution",
        "Moyenne, médiane et 90e centile, en heures et en heures ouvrées, par priorité (date de clôture).",
        report_resolution,
    ),
    ReportSpec(
        "first_response",
        "Première réponse",
        "Délai entre la création et la première réponse publique de l'équipe (date de création).",
        report_first_response,
    ),
    ReportSpec(
        "sla",
        "Respect des délais",
        "Demandes résolues dans les délais ou hors délais, par priorité (date de création).",
        report_sla,
    ),
    ReportSpec(
        "backlog_status",
        "En cours par statut",
        "Demandes non clôturées, par statut (créées sur la période).",
        report_backlog_status,
    ),
    ReportSpec(
        "backlog_agent",
        "En cours par technicien",
        "Demandes non clôturées, par technicien assigné (créées sur la période).",
        report_backlog_agent,
    ),
    ReportSpec(
        "agents",
        "Par technicien",
        "Demandes assignées (créées sur la période), clôturées et résolution moyenne (clôturées sur la période).",
        report_agents,
    ),
    ReportSpec("types", "Par type", "Volumes et résolution par type de demande.", report_types),
    ReportSpec(
        "reopen_rate",
        "Taux de réouverture",
        "Part des demandes clôturées puis rouvertes, par priorité (date de création).",
        report_reopen_rate,
    ),
    ReportSpec(
        "top_customers",
        "Clients les plus demandeurs",
        f"Les {TOP_CUSTOMERS} clients ayant créé le plus de demandes sur la période.",
        report_top_customers,
    ),
)
REPORTS = {spec.key: spec for spec in CATALOGUE}


def list_reports(session: Session, *, actor: dict[str, Any]) -> list[dict[str, str]]:
    """The reports ``actor`` may open (PermissionDenied if none)."""
    scope = policy.scope_for(session, actor)
    return [
        {"key": spec.key, "title": spec.title, "description": spec.description}
        for spec in CATALOGUE
        if scope.allows(spec.key)
    ]


def get_report(
    session: Session, *, actor: dict[str, Any], report: str, filters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One report for ``actor``, with the visibility rules applied."""
    spec = REPORTS.get(report)
    if spec is None:
        raise NotFound("Rapport introuvable.")
    scope = policy.scope_for(session, actor)
    if not scope.allows(report):
        raise PermissionDenied(policy.NO_REPORTS_MESSAGE)
    parsed = parse_filters(filters)
    if is_postgres(session):
        # PostgreSQL's JIT compiles these aggregates for ~100 ms, more than they take to run (measured on 1M rows).
        session.execute(text("SET LOCAL jit = off"))
        # Percentiles sort every duration of the period: keep the sort in memory.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    if scope.role in policy.CLIENT_ROLES and parsed.agent_id:
        raise PermissionDenied("Le filtre par technicien n'est pas disponible pour votre compte.")
    built = spec.build(session, scope, parsed)
    return {
        "key": spec.key,
        "title": spec.title,
        "description": spec.description,
        "filters": parsed.to_dict(),
        "columns": [{"key": key, "label": label, "kind": kind} for key, label, kind in built["columns"]],
        "rows": built["rows"],
        "chart": built["chart"],
    }


def filter_options(
    session: Session, *, actor: dict[str, Any], customer_search: bool = False
) -> dict[str, Any]:
    """The values offered in the filters: customers in the actor's scope, types, priorities, agents.

    ``customer_search``: the caller lets staff search the customer directory (crm_sync) instead of choosing from a
    list, so staff get no list (``customer_search`` true in the answer); clients and resellers, who may not search
    it, keep theirs (their own company, a reseller's end customers)."""
    scope = policy.scope_for(session, actor)
    search = bool(customer_search) and scope.role not in policy.CLIENT_ROLES
    customers: list[dict[str, str]] = []
    if not search:
        listed = select(Customer.id, Customer.name).order_by(Customer.name).limit(MAX_ROWS)
        if scope.role == "sales":
            listed = listed.where(Customer.sales_rep_id == actor["id"])
        elif scope.role in policy.CLIENT_ROLES:
            listed = listed.where(Customer.id.in_(policy.client_summary_customers(session, actor)))
        customers = [{"value": customer_id, "label": name} for customer_id, name in session.execute(listed)]
    agents = []
    if scope.role not in policy.CLIENT_ROLES:
        agents = [
            {"value": user_id, "label": name or user_id}
            for user_id, name in session.execute(
                select(User.id, User.name).where(User.role.in_(("admin", "agent"))).order_by(User.name)
            )
        ]
    dimensions: dict[str, list[dict[str, str]]] = {"type": [], "priority": []}
    for row in session.scalars(select(DimensionValue).order_by(DimensionValue.value)):
        dimensions.setdefault(row.dimension, []).append({"value": row.value, "label": row.label or row.value})
    dimensions["priority"].sort(key=lambda item: _priority_sort_key(item["value"]))
    return {
        "customer_search": search,
        "customers": customers,
        "types": dimensions["type"],
        "priorities": dimensions["priority"],
        "agents": agents,
        "granularities": [
            {"value": "day", "label": "Jour"},
            {"value": "week", "label": "Semaine"},
            {"value": "month", "label": "Mois"},
        ],
    }
