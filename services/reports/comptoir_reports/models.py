"""Tables of the reports service: the ticket events received, the per-ticket facts folded from them, read models.

``ticket_events`` is the projection's source of truth (one row per ticket event, only the fields the figures need);
``ticket_facts`` holds one row per ticket, recomputed from that ticket's events whenever one arrives, with the
columns reports group and filter on (days in Paris time, durations precomputed), so a report is one indexed
aggregate query and never touches the tickets service.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from comptoir_common.db import declarative_base_for, utcnow
from comptoir_common.outbox import InboxMixin
from sqlalchemy import JSON, BigInteger, Float, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, validates

from comptoir_reports.durations import duration_bucket

Base = declarative_base_for()


def new_id() -> str:
    return str(uuid.uuid4())


class TicketEvent(Base):
    """A ticket event as received (live or replayed), reduced to what the projection reads."""

    __tablename__ = "ticket_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime]
    actor: Mapped[dict] = mapped_column(JSON)
    data: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_id", "occurred_at"),)


CREATED_COVER = [
    "type",
    "priority",
    "customer_id",
    "is_closed",
    "requester_key",
    "first_response_seconds",
    "first_response_business_seconds",
    "first_response_bucket",
    "first_response_business_bucket",
    "assignee_ids",
]
CLOSED_COVER = [
    "type",
    "priority",
    "customer_id",
    "resolution_seconds",
    "resolution_business_seconds",
    "resolution_bucket",
    "resolution_business_bucket",
    "assignee_ids",
]


# The durations of a fact and the day each is reported on.
DURATION_DAYS = {
    "first_response": "created_day",
    "first_response_business": "created_day",
    "resolution": "closed_day",
    "resolution_business": "closed_day",
}


class TicketFact(Base):
    """One ticket's figures, as of the events received so far."""

    __tablename__ = "ticket_facts"

    ticket_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[int | None] = mapped_column(default=None)
    title: Mapped[str | None] = mapped_column(String(300), default=None)
    customer_id: Mapped[str | None] = mapped_column(String(36), default=None)
    # Who asked: their user id, or "email:<address>" for a sender without an account.
    requester_key: Mapped[str | None] = mapped_column(String(330), default=None)
    requester_id: Mapped[str | None] = mapped_column(String(36), default=None)
    requester_name: Mapped[str | None] = mapped_column(String(200), default=None)
    requester_email: Mapped[str | None] = mapped_column(String(320), default=None)
    type: Mapped[str | None] = mapped_column(String(100), default=None)
    priority: Mapped[str | None] = mapped_column(String(100), default=None)
    status: Mapped[str | None] = mapped_column(String(100), default=None)
    status_label: Mapped[str | None] = mapped_column(String(200), default=None)
    status_category: Mapped[str | None] = mapped_column(String(20), default=None)
    is_closed: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str | None] = mapped_column(String(20), default=None)
    created_at: Mapped[datetime]
    # Local (Europe/Paris) calendar days, which is how people read "tickets of the 3rd".
    created_day: Mapped[date]
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    first_response_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    first_response_business_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    first_closed_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_day: Mapped[date | None] = mapped_column(default=None)
    resolution_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    resolution_business_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    # Each duration's bucket (durations.duration_bucket), set whenever the duration is: what the percentiles
    # count per month (report_duration_months) and look values up by.
    first_response_bucket: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    first_response_business_bucket: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    resolution_bucket: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    resolution_business_bucket: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    reopen_count: Mapped[int] = mapped_column(default=0)
    resolution_due_at: Mapped[datetime | None] = mapped_column(default=None)
    # "met", "breached", or None while undecided (open and not reported breached) or without a deadline.
    sla_status: Mapped[str | None] = mapped_column(String(10), default=None)
    assignee_ids: Mapped[list] = mapped_column(JSON, default=list)
    last_event_at: Mapped[datetime]

    # The period indexes cover the columns the per-ticket reports (percentiles, per requester, per customer) and the
    # per-agent reports filtered by type or priority read, so that PostgreSQL answers them with an index-only scan;
    # SQLite ignores ``postgresql_include``.
    __table_args__ = (
        Index("ix_ticket_facts_created_day", "created_day", postgresql_include=CREATED_COVER),
        Index("ix_ticket_facts_closed_day", "closed_day", postgresql_include=CLOSED_COVER),
        Index("ix_ticket_facts_customer_created", "customer_id", "created_day"),
        Index("ix_ticket_facts_customer_closed", "customer_id", "closed_day"),
        # Covering the requester's details, read for the busiest requesters of a period without visiting the table.
        Index(
            "ix_ticket_facts_requester_created",
            "requester_key",
            "created_day",
            postgresql_include=["requester_name", "requester_email", "customer_id"],
        ),
        # The values of a few buckets of a period, for the percentiles (index-only on PostgreSQL).
        *(
            Index(
                f"ix_ticket_facts_{duration}_bucket",
                f"{duration}_bucket",
                day,
                postgresql_include=["priority", f"{duration}_seconds"],
            )
            for duration, day in DURATION_DAYS.items()
        ),
    )

    @validates(*(f"{duration}_seconds" for duration in DURATION_DAYS))
    def _set_bucket(self, key: str, seconds: float | None) -> float | None:
        setattr(self, key.removesuffix("_seconds") + "_bucket", duration_bucket(seconds))
        return seconds


class TicketAssignee(Base):
    """Who a ticket is assigned to now (one row per agent), for the per-agent figures and the agent filter."""

    __tablename__ = "ticket_assignees"

    ticket_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_name: Mapped[str | None] = mapped_column(String(200), default=None)
    # The ticket's days (copied from its fact), so that the agent filter reads only that agent's period.
    created_day: Mapped[date | None] = mapped_column(default=None)
    closed_day: Mapped[date | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_ticket_assignees_agent", "agent_id", "ticket_id"),
        Index("ix_ticket_assignees_agent_created", "agent_id", "created_day"),
        Index("ix_ticket_assignees_agent_closed", "agent_id", "closed_day"),
    )


# Daily rollups of ``ticket_facts``, kept by the projection in the same transaction as the facts (see rollups.py):
# the period reports without a customer, sales-rep or agent restriction read a few thousand of these rows instead of
# the facts of the period. Missing type/priority/status are stored as ''. Durations are summed in whole
# milliseconds, so that adding and removing a ticket's contribution is exact.


class ReportDay(Base):
    """Per day × type × priority × status: the created-side figures of the tickets created that day and the
    closed-side figures of the tickets (finally) closed that day."""

    __tablename__ = "report_days"

    day: Mapped[date] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(100), primary_key=True)
    priority: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(100), primary_key=True)
    status_label: Mapped[str] = mapped_column(String(200), primary_key=True)
    created: Mapped[int] = mapped_column(BigInteger, default=0)
    open: Mapped[int] = mapped_column(BigInteger, default=0)
    open_unassigned: Mapped[int] = mapped_column(BigInteger, default=0)
    closed_now: Mapped[int] = mapped_column(BigInteger, default=0)
    created_resolved: Mapped[int] = mapped_column(BigInteger, default=0)
    created_resolution_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    created_resolution_business_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    reopened: Mapped[int] = mapped_column(BigInteger, default=0)
    reopens: Mapped[int] = mapped_column(BigInteger, default=0)
    closed_once: Mapped[int] = mapped_column(BigInteger, default=0)
    sla_met: Mapped[int] = mapped_column(BigInteger, default=0)
    sla_breached: Mapped[int] = mapped_column(BigInteger, default=0)
    unanswered: Mapped[int] = mapped_column(BigInteger, default=0)
    closed: Mapped[int] = mapped_column(BigInteger, default=0)
    resolution_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    resolution_business_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportAgentDay(Base):
    """Per day × current assignee: tickets created that day (assigned, still open) and closed that day."""

    __tablename__ = "report_agent_days"

    day: Mapped[date] = mapped_column(primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    assigned: Mapped[int] = mapped_column(BigInteger, default=0)
    open: Mapped[int] = mapped_column(BigInteger, default=0)
    closed: Mapped[int] = mapped_column(BigInteger, default=0)
    resolution_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    resolution_business_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportDurationMonth(Base):
    """Per month × duration × priority × bucket of the duration: how many facts, and their total. The percentiles
    of a long period count per bucket from here (whole months) and from the facts (the days at its ends), then read
    only the values of the buckets holding the wanted ranks."""

    __tablename__ = "report_duration_months"

    # One of DURATION_DAYS: first_response(_business) by month of creation, resolution(_business) of closing. First
    # in the key: a report reads one or two durations over a range of months.
    duration: Mapped[str] = mapped_column(String(30), primary_key=True)
    month: Mapped[date] = mapped_column(primary_key=True)  # its first day
    priority: Mapped[str] = mapped_column(String(100), primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    total_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class DimensionValue(Base):
    """Values seen for a filterable dimension (ticket type, priority), to offer in the filters cheaply."""

    __tablename__ = "dimension_values"

    dimension: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(100), primary_key=True)
    label: Mapped[str | None] = mapped_column(String(200), default=None)


class Customer(Base):
    """Read model of the customer directory (crm_sync events): names and sales reps."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    sales_rep_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    parent_customer_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """Read model of the accounts (auth events): names and roles for labels."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    role: Mapped[str | None] = mapped_column(String(20), default=None)
    customer_id: Mapped[str | None] = mapped_column(String(36), default=None)
    active: Mapped[bool] = mapped_column(default=True)


class ClientSummary(Base):
    """A customer whose clients an admin allowed to see their own company's summary figures."""

    __tablename__ = "client_summaries"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    changed_by: Mapped[str | None] = mapped_column(String(36), default=None)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class RebuildRun(Base):
    """A rebuild of the projections from the tickets' history: requested, then run by one instance."""

    __tablename__ = "rebuild_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    requested_by: Mapped[str | None] = mapped_column(String(36), default=None)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # Heartbeat: a run whose instance died stops beating and is taken over.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seq: Mapped[int] = mapped_column(default=0)
    events_replayed: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class ProcessedEvent(InboxMixin, Base):
    pass
