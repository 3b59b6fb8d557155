"""Every service's migrations build exactly the tables its models declare, on PostgreSQL and on SQLite.

A model changed without a migration (or a migration edited by hand, such as the shared outbox operations) would pass
every other test that starts from the migrated schema, and fail only on a real upgrade.
"""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from comptoir_common.db import make_engine
from comptoir_common.migrations import upgrade
from comptoir_dev.registry import SERVICES
from sqlalchemy.dialects.postgresql import TSVECTOR


def _is_postgresql_search_structure(obj, name, type_, reflected, compare_to) -> bool:
    """Full-text indexes (GIN/GiST) and tsvector columns that migrations add on PostgreSQL only, on purpose."""
    if not reflected or compare_to is not None:
        return False
    if type_ == "index":
        return obj.dialect_options["postgresql"].get("using") in ("gin", "gist")
    return type_ == "column" and isinstance(obj.type, TSVECTOR)


def _differences(url: str, package: str) -> list:
    metadata = importlib.import_module(f"{package}.models").Base.metadata
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_object": lambda *args: not _is_postgresql_search_structure(*args),
                },
            )
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


@pytest.mark.parametrize("info", SERVICES, ids=lambda info: info.name)
def test_postgresql_schema_from_migrations_matches_models(info, migrated_database):
    assert _differences(migrated_database(info.name), info.package) == []


@pytest.mark.parametrize("info", SERVICES, ids=lambda info: info.name)
def test_sqlite_schema_from_migrations_matches_models(info, tmp_path):
    url = f"sqlite:///{tmp_path / (info.name + '.db')}"
    upgrade(info.migrations_dir, url)
    assert _differences(url, info.package) == []
