"""stored full-text search vector

Revision ID: 109aa1c97de8
Revises: 67f6ac378da2
Create Date: 2026-11-28 07:52:20.398595

Measured (bench/wiki.py, 2,000 pages of ~2.4 kB): with an expression index, ranking and the title alternative made
PostgreSQL recompute ``to_tsvector`` for every page on each search (seconds). A stored generated column, weighted
(title A, content B) and GIN-indexed, is computed once per write. PostgreSQL only: SQLite searches with LIKE, and
the column is not in the SQLAlchemy model (nothing else reads it; ``comptoir_wiki.pages.search_pages`` names it).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "109aa1c97de8"
down_revision: str | None = "67f6ac378da2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_pages_fulltext")
    op.execute(
        "ALTER TABLE pages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('french'::regconfig, coalesce(title, '')), 'A') || "
        "setweight(to_tsvector('french'::regconfig, coalesce(content, '')), 'B')) STORED"
    )
    op.execute("CREATE INDEX ix_pages_search_vector ON pages USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_pages_search_vector")
    op.execute("ALTER TABLE pages DROP COLUMN IF EXISTS search_vector")
    op.execute(
        "CREATE INDEX ix_pages_fulltext ON pages USING gin "
        "(to_tsvector('french'::regconfig, coalesce(title, '') || ' ' || coalesce(content, '')))"
    )
