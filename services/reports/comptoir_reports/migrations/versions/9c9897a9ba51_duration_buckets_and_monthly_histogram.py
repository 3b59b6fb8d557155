"""duration buckets and monthly histogram

Revision ID: 9c9897a9ba51
Revises: a145c5de138b
Create Date: 2026-11-28 13:34:14.155409
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision: str = "9c9897a9ba51"
down_revision: str | None = "a145c5de138b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The durations and their report days, and the covering columns, as they were when this revision was written.
DURATION_DAYS = {
    "first_response": "created_day",
    "first_response_business": "created_day",
    "resolution": "closed_day",
    "resolution_business": "closed_day",
}
COVERS = {
    ("ix_ticket_facts_created_day", ("created_day",)): [
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
    ],
    ("ix_ticket_facts_closed_day", ("closed_day",)): [
        "type",
        "priority",
        "customer_id",
        "resolution_seconds",
        "resolution_business_seconds",
        "resolution_bucket",
        "resolution_business_bucket",
        "assignee_ids",
    ],
    ("ix_ticket_facts_requester_created", ("requester_key", "created_day")): [
        "requester_name",
        "requester_email",
        "customer_id",
    ],
}


def upgrade() -> None:
    op.create_table(
        "report_duration_months",
        sa.Column("duration", sa.String(length=30), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("priority", sa.String(length=100), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "duration", "month", "priority", "bucket", name=op.f("pk_report_duration_months")
        ),
    )
    with op.batch_alter_table("ticket_facts", schema=None) as batch_op:
        for duration in DURATION_DAYS:
            batch_op.add_column(sa.Column(f"{duration}_bucket", sa.SmallInteger(), nullable=True))
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        # The covering indexes now also carry the buckets (and the requester's details): dropped first, so that
        # filling the buckets of an upgraded store does not maintain them row by row.
        for name, _ in COVERS:
            op.drop_index(name, table_name="ticket_facts")
    if bind.execute(sa.text("SELECT count(*) FROM ticket_facts")).scalar():
        # Facts projected before the buckets existed: bucket their durations, then count them per month (only an
        # upgraded store has any). The buckets are computed in Python, where the projection computes them.
        from comptoir_reports import rollups

        session = Session(bind=bind)
        rollups.fill_buckets(session)
        rollups.refill(session)
        session.flush()
    with op.batch_alter_table("ticket_facts", schema=None) as batch_op:
        for duration, day in DURATION_DAYS.items():
            batch_op.create_index(
                f"ix_ticket_facts_{duration}_bucket",
                [f"{duration}_bucket", day],
                unique=False,
                postgresql_include=["priority", f"{duration}_seconds"],
            )
    if postgres:
        for (name, columns), cover in COVERS.items():
            op.create_index(name, "ticket_facts", list(columns), postgresql_include=cover)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Back to the previous revision's indexes, without the columns about to go.
        for (name, columns), cover in COVERS.items():
            op.drop_index(name, table_name="ticket_facts")
            previous = [column for column in cover if not column.endswith("_bucket")]
            if name == "ix_ticket_facts_requester_created":
                previous = []
            op.create_index(name, "ticket_facts", list(columns), postgresql_include=previous)
    with op.batch_alter_table("ticket_facts", schema=None) as batch_op:
        for duration in DURATION_DAYS:
            batch_op.drop_index(f"ix_ticket_facts_{duration}_bucket")
    with op.batch_alter_table("ticket_facts", schema=None) as batch_op:
        for duration in DURATION_DAYS:
            batch_op.drop_column(f"{duration}_bucket")
    op.drop_table("report_duration_months")
