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
from sqlalchemy.pool import QueuePool
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


# How long a connection a burst opened beyond the idle ones stays open once returned (``make_engine(linger=True)``).
LINGER_SECONDS = 10.0


class LingeringQueuePool(QueuePool):
    """A QueuePool that closes the connections beyond :data:`IDLE_CONNECTIONS` only once they have been idle for
    :data:`LINGER_SECONDS`, instead of the moment they are returned.

    A plain pool of 3 under a steady load of 10 workers (a backlog of events) opened and closed a PostgreSQL
    connection for 7 events out of 10 — a backend started, its catalog cache cold, for one small transaction. Here
    the connections stay while the load lasts, the most recently used are reused first (LIFO), and :meth:`trim`
    (at each checkout and return, and from a timer: see ``nameko_ext.Database``) closes the ones no longer needed.
    The total stays bounded by the pool's size.
    """

    def __init__(
        self,
        creator,
        pool_size: int = 5,
        max_overflow: int = 0,
        use_lifo: bool = True,
        idle_connections: int = IDLE_CONNECTIONS,
        **kw,
    ):
        super().__init__(creator, pool_size=pool_size, max_overflow=0, use_lifo=True, **kw)
        self.idle_connections = idle_connections

    def _do_return_conn(self, record) -> None:
        record.info["comptoir_returned_at"] = time.monotonic()
        super()._do_return_conn(record)
        self.trim()

    def _do_get(self):
        self.trim()
        return super()._do_get()

    def trim(self) -> int:
        """Close the idle connections beyond the first :data:`IDLE_CONNECTIONS` that have lingered long enough."""
        deadline = time.monotonic() - LINGER_SECONDS
        stale = []
        queue = self._pool
        with queue.mutex:
            # LIFO: the left end holds the connections returned longest ago.
            while len(queue.queue) > self.idle_connections:
                oldest = queue.queue[0]
                if oldest.info.get("comptoir_returned_at", 0.0) > deadline:
                    break
                stale.append(queue.queue.popleft())
        for record in stale:
            try:
                record.close()
            finally:
                self._dec_overflow()
        return len(stale)


def make_engine(
    url: str, pool_size: int = 10, idle_connections: int = IDLE_CONNECTIONS, linger: bool = False
) -> Engine:
    """An engine for up to ``pool_size`` concurrent workers; a connection idle for a while is pinged before use, so
    a restarted database is survived.

    At most ``idle_connections`` connections stay open when idle; with ``linger`` the ones a burst needed stay
    :data:`LINGER_SECONDS` longer (:class:`LingeringQueuePool`; the caller calls ``engine.pool.trim()`` now and
    then so that a process gone quiet gives them back)."""
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
    if linger:
        engine = create_engine(
            url,
            poolclass=LingeringQueuePool,
            pool_size=2 * pool_size,
            idle_connections=idle_connections,
            pool_recycle=1800,
        )
        _ping_when_idle(engine)
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


def dialect_insert(session_or_engine):
    """The ``insert`` construct of the bound dialect (PostgreSQL or SQLite), which has ``on_conflict_do_*``."""
    if is_postgres(session_or_engine):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def declarative_base_for() -> type[DeclarativeBase]:
    """A fresh declarative base with its own MetaData: each service owns its tables."""

    class ServiceBase(DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map = {datetime: UTCDateTime()}

    return ServiceBase
