"""pytest fixtures over the real components (loaded by the root ``conftest.py``)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from comptoir_testing import infra


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    yield infra.postgres_server_url()


@pytest.fixture(scope="session")
def new_database(postgres_server: str, run_id: str) -> Iterator[Callable[[str], str]]:
    """``new_database("tickets")`` → the URL of a fresh, empty PostgreSQL database, dropped after the run."""
    created: list[str] = []

    def make(label: str) -> str:
        name = f"ct_{run_id}_{label}_{len(created)}".replace("-", "_")
        created.append(name)
        return infra.create_database(postgres_server, name)

    yield make
    for name in created:
        infra.drop_database(postgres_server, name)


@pytest.fixture(scope="session")
def migrated_database(new_database) -> Callable[[str], str]:
    """``migrated_database("tickets")`` → the URL of this run's database of that service, migrated (made once)."""
    from comptoir_common.migrations import upgrade
    from comptoir_dev.registry import service

    urls: dict[str, str] = {}

    def get(service_name: str) -> str:
        if service_name not in urls:
            url = new_database(service_name)
            upgrade(service(service_name).migrations_dir, url)
            urls[service_name] = url
        return urls[service_name]

    return get


@contextmanager
def rolled_back_session(engine: Engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside one transaction that is rolled back at the end."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture(scope="session")
def amqp_uri() -> Iterator[str]:
    """A RabbitMQ vhost of this run's own (deleted after)."""
    server_uri, local = infra.amqp_server_uri()
    uri, vhost = infra.create_vhost(server_uri, local)
    yield uri
    infra.delete_vhost(vhost)


class CapturingSmtpHandler:
    """Keeps every message the SMTP server accepts; tests wait for the ones they expect."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._condition = threading.Condition()
        self.refuse_with: str | None = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.refuse_with:
            return self.refuse_with
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._condition:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._condition.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, predicate: Callable[[EmailMessage], bool], timeout: float = 20.0) -> EmailMessage:
        def found():
            return next((message for message in self.messages if predicate(message)), None)

        with self._condition:
            self._condition.wait_for(lambda: found() is not None, timeout=timeout)
            message = found()
        if message is None:
            subjects = [str(m["Subject"]) for m in self.messages][-20:]
            raise AssertionError(f"no matching mail within {timeout}s; received: {subjects}")
        return message


class SmtpServer:
    def __init__(self):
        self.handler = CapturingSmtpHandler()
        self.port = infra.free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def wait_for(self, predicate, timeout: float = 20.0) -> EmailMessage:
        return self.handler.wait_for(predicate, timeout)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free port, keeping what it receives."""
    server = SmtpServer()
    server.controller.start()
    yield server
    server.controller.stop()


def pytest_sessionfinish(session, exitstatus):
    infra.stop_containers()


class WorkerDatabaseDouble:
    """Stands in for ``self.db`` when a service class is built with nameko's ``worker_factory``.

    It wraps a real (rolled-back) session, so the entrypoint decorators' commits become savepoints.
    """

    def __init__(self, session: Session, outbox_model=None, inbox_model=None):
        self.session = session
        self.outbox_model = outbox_model
        self.inbox_model = inbox_model
        self.commits = 0

    def commit(self) -> None:
        self.session.info.pop("outbox_dirty", None)
        self.session.commit()
        self.commits += 1

    def rollback(self) -> None:
        self.session.rollback()


def service_session_fixtures(service_name: str, *, pool_size: int = 2):
    """``engine, session = service_session_fixtures("tickets")`` in a service's tests/conftest.py.

    ``engine`` is this run's migrated database of the service; ``session`` a rolled-back session on it per test.
    """
    from comptoir_common.db import make_engine

    @pytest.fixture(scope="session", name="engine")
    def engine_fixture(migrated_database):
        engine = make_engine(migrated_database(service_name), pool_size=pool_size)
        yield engine
        engine.dispose()

    @pytest.fixture(name="session")
    def session_fixture(engine):
        with rolled_back_session(engine) as session:
            yield session

    return engine_fixture, session_fixture


def service_session_factory_fixture(service_name: str, *, name: str, pool_size: int = 2):
    """A session-scoped fixture ``name``: a factory of sessions that really commit, on this run's migrated database
    of ``service_name`` (for code under test that manages its own transactions, or another service's store).

    ``tickets_factory = service_session_factory_fixture("tickets", name="tickets_factory")`` in a conftest."""
    from comptoir_common.db import make_engine, make_session_factory

    @pytest.fixture(scope="session", name=name)
    def factory_fixture(migrated_database):
        engine = make_engine(migrated_database(service_name), pool_size=pool_size)
        yield make_session_factory(engine)
        engine.dispose()

    return factory_fixture


@pytest.fixture(scope="session")
def imap_server():
    """A private dovecot-imapd (TLS and plain ports, maildir, static password), stopped after the run.

    Its folder is outside pytest's (which only root may enter): dovecot reads mail as its own user."""
    import tempfile
    from pathlib import Path

    from comptoir_testing.imap import DovecotServer

    server = DovecotServer(Path(tempfile.mkdtemp(prefix="comptoir-dovecot-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.cleanup()
