"""Alembic per service: each service package holds ``migrations/`` and calls :func:`upgrade` at start-up."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text

from comptoir_common.db import make_engine

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every instance of every service sharing a PostgreSQL server.
_MIGRATION_LOCK_KEY = 0x436F6D70  # "Comp"


def alembic_config(script_location: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(script_location: Path, database_url: str) -> None:
    """Bring the store at ``database_url`` to the latest revision.

    On PostgreSQL an advisory lock serialises instances that start together (``--scale tickets=3``).
    """
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            postgres = connection.dialect.name == "postgresql"
            if postgres:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                connection.commit()
            try:
                config = alembic_config(script_location, database_url)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            finally:
                if postgres:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                    connection.commit()
    finally:
        engine.dispose()


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url"), pool_size=1)
        engine.pool = pool.NullPool(engine.pool._creator)
        with engine.connect() as connection:
            _run(connection, target_metadata)
            connection.commit()
    else:
        _run(connection, target_metadata)


def _run(connection, target_metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def make_revision(script_location: Path, database_url: str, message: str) -> None:
    """Autogenerate a revision for a service (a developer's command; see docs/development.md).

    The Mako template is shared by all services and copied in only for the time of the command.
    """
    import shutil

    template = Path(__file__).parent / "alembic_template" / "script.py.mako"
    target = Path(script_location) / "script.py.mako"
    shutil.copy(template, target)
    try:
        upgrade(script_location, database_url)
        config = alembic_config(script_location, database_url)
        engine = make_engine(database_url, pool_size=1)
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True)
        engine.dispose()
    finally:
        target.unlink(missing_ok=True)
