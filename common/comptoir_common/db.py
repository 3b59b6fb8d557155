"""SQLAlchemy engines and sessions, the same for every service.

PostgreSQL (psycopg2, which eventlet greens) in tests and production; SQLite for a local run. Business modules take
a ``Session`` as a keyword argument and never commit: the caller (a nameko worker, a CLI command, a test) owns the
transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A MetaData with stable constraint names, so that Alembic migrations are identical on every database."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalise_database_url(url: str) -> str:
    """Plain ``postgresql://`` URLs use psycopg2: eventlet greens it, whereas psycopg 3 would block every worker
    (and SQLAlchemy 2.1 picks psycopg 3 by default)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


# Connections a process keeps open when idle unless told otherwise (services: ``COMPTOIR_DB_IDLE_CONNECTIONS``). A
# PostgreSQL server allows 100 by default, shared by every instance of every service: a burst opens more (up to twice
# ``pool_size`` in all, as callers expect), closed once returned.
IDLE_CONNECTIONS = 3


def make_engine(url: str, pool_size: int = 10, idle_connections: int = IDLE_CONNECTIONS) -> Engine:
    """An engine for up to ``pool_size`` concurrent workers, with pre-ping so a restarted database is survived;
    ``idle_connections`` stay open between bursts."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_engine(
        url,
        pool_size=min(pool_size, idle_connections),
        max_overflow=2 * pool_size - min(pool_size, idle_connections),
        pool_recycle=1800,
    )
    _ping_when_idle(engine)
    return engine


# A connection back in use within this many seconds is not pinged first: under load every request would otherwise
# pay one more round trip (``pool_pre_ping`` pings on every checkout). A database restart takes longer than this,
# and an error on a connection that broke meanwhile invalidates the whole pool anyway.
PING_AFTER_IDLE_SECONDS = 2.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:
        last = record.info.get("checked_in_at")
        if last is not None and time.monotonic() - last < PING_AFTER_IDLE_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
        except Exception as exc:
            # The pool drops this connection and checks out another (a fresh one if need be).
            raise DisconnectionError() from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session_or_engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"


def declarative_base_for() -> type[DeclarativeBase]:
    """A fresh declarative base with its own MetaData: each service owns its tables."""

    class ServiceBase(DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map = {datetime: UTCDateTime()}

    return ServiceBase
