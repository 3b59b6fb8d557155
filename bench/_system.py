"""Start the real system (PostgreSQL databases, a vhost, every process) for a benchmark, and clean up after."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from comptoir_common.migrations import upgrade
from comptoir_dev.registry import SERVICES
from comptoir_testing import infra
from comptoir_testing.fixtures import SmtpServer
from comptoir_testing.system import SystemUnderTest

# What the tests lower to share PostgreSQL, back to the production default for measuring.
PRODUCTION_ENV = {"COMPTOIR_DB_IDLE_CONNECTIONS": "10"}


@contextlib.contextmanager
def running_system(label: str, start: bool = True) -> Iterator[SystemUnderTest]:
    """Databases migrated, a vhost, an SMTP server and the processes; ``start=False`` leaves starting them to the
    caller (to load a data set into the migrated databases first: ``system.database_urls``)."""
    server_url = infra.postgres_server_url()
    amqp_server, local = infra.amqp_server_uri()
    amqp_uri, vhost = infra.create_vhost(amqp_server, local)
    run = uuid.uuid4().hex[:6]
    databases = {info.name: f"bench_{run}_{label}_{info.name}" for info in SERVICES}
    urls = {}
    smtp = SmtpServer()
    smtp.controller.start()
    system = None
    try:
        for info in SERVICES:
            urls[info.name] = infra.create_database(server_url, databases[info.name])
            upgrade(info.migrations_dir, urls[info.name])
        system = SystemUnderTest(
            Path(tempfile.mkdtemp(prefix="comptoir-bench-")),
            amqp_uri,
            urls,
            smtp.url,
            extra_env=PRODUCTION_ENV,
        )
        system.smtp = smtp
        system.database_names = list(databases.values())
        if start:
            system.start()
        yield system
    finally:
        if system is not None:
            system.stop()
        smtp.controller.stop()
        for name in databases.values():
            infra.drop_database(server_url, name)
        infra.delete_vhost(vhost)
