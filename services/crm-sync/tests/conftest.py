"""Fixtures of the crm_sync tests: a migrated PostgreSQL database and sessions over it."""

from __future__ import annotations

import pytest
from comptoir_common.db import make_engine, make_session_factory
from comptoir_testing.fixtures import service_session_fixtures

engine, session = service_session_fixtures("crm_sync")


@pytest.fixture(scope="module")
def sync_database(new_database):
    """A database of the module's own, for code that commits (the sync): emptied before each test."""
    from comptoir_common.migrations import upgrade
    from comptoir_dev.registry import service

    url = new_database("crm_sync")
    upgrade(service("crm_sync").migrations_dir, url)
    engine = make_engine(url, pool_size=4)
    yield engine
    engine.dispose()


def empty_tables(engine) -> None:
    from comptoir_crm_sync.models import Base
    from sqlalchemy import text

    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def sync_factory(sync_database):
    empty_tables(sync_database)
    return make_session_factory(sync_database)


@pytest.fixture
def fake_filemaker():
    from comptoir_testing.fake_filemaker import FakeFileMaker, SteppingClock, add_clients_layout

    clock = SteppingClock()
    fake = FakeFileMaker(clock=clock)
    fake.clock_control = clock
    add_clients_layout(fake)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def sync_settings(fake_filemaker):
    from comptoir_crm_sync.settings import CrmSyncSettings

    return CrmSyncSettings(
        filemaker_url=fake_filemaker.url,
        filemaker_user=fake_filemaker.user,
        filemaker_password=fake_filemaker.password,
        filemaker_database=fake_filemaker.database,
        filemaker_verify_ssl=fake_filemaker.ca_path,
        filemaker_timeout=5.0,
        sync_page_size=10,
        sync_retries=3,
        sync_backoff=0.01,
        sync_overlap_seconds=60,
    )
