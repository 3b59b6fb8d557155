"""Where the real components are, and a database and a vhost of our own on them for one test run.

URLs come from ``TEST_DATABASE_URL`` (a PostgreSQL server URL with rights to create databases) and
``TEST_AMQP_URI``; without them the local servers are used (PostgreSQL on 127.0.0.1:5432 with trust auth, RabbitMQ
on 127.0.0.1:5672 as guest), and only if those do not answer and a Docker engine does, testcontainers starts them.
Nothing is skipped when a component is missing: the run fails and says what is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
import warnings
from contextlib import closing
from urllib.parse import quote, urlsplit, urlunsplit

import sqlalchemy as sa
from comptoir_common.db import normalise_database_url

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


class MissingComponent(RuntimeError):
    pass


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with closing(socket.create_connection((host, port), timeout=timeout)):
            return True
    except OSError:
        return False


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


_containers: list = []


def postgres_server_url() -> str:
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    if port_open("127.0.0.1", 5432):
        return LOCAL_POSTGRES
    if docker_answers():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver="psycopg2").start()
        _containers.append(container)
        return container.get_connection_url()
    raise MissingComponent(
        "PostgreSQL is needed by the tests: set TEST_DATABASE_URL, start the local server "
        "(pg_ctlcluster <version> main start) or make a Docker engine available."
    )


def amqp_server_uri() -> tuple[str, bool]:
    """The broker URI and whether it is the local broker (where rabbitmqctl can make vhosts)."""
    if os.environ.get("TEST_AMQP_URI"):
        return os.environ["TEST_AMQP_URI"], False
    if port_open("127.0.0.1", 5672):
        return LOCAL_AMQP, True
    if docker_answers():
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13-alpine").start()
        _containers.append(container)
        params = container.get_connection_params()
        return f"amqp://guest:guest@{params.host}:{params.port}/", False
    raise MissingComponent(
        "RabbitMQ is needed by the tests: set TEST_AMQP_URI, start the local broker "
        "(rabbitmq-server -detached) or make a Docker engine available."
    )


def stop_containers() -> None:
    while _containers:
        _containers.pop().stop()


def with_database(server_url: str, database: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def create_database(server_url: str, name: str) -> str:
    engine = sa.create_engine(normalise_database_url(server_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    engine = sa.create_engine(normalise_database_url(server_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


# A vhost operation takes a second or so, a few more to delete a vhost full of quorum queues. Bounded so that a
# stuck broker fails the run naming the command, before pytest-timeout's 180 s per test.
RABBITMQCTL_TIMEOUT = 60


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=RABBITMQCTL_TIMEOUT)


def create_vhost(server_uri: str, local: bool) -> tuple[str, str | None]:
    """A fresh vhost for the run (local broker), else the URI as given. Returns (uri, vhost to delete)."""
    if not local or shutil.which("rabbitmqctl") is None:
        return server_uri, None
    vhost = f"comptoir-test-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    parts = urlsplit(server_uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", "")), vhost


def delete_vhost(vhost: str | None) -> None:
    """Best effort: a deletion the CLI gave up waiting for still completes in the broker; the run's results stand."""
    if vhost:
        try:
            _rabbitmqctl("delete_vhost", vhost)
        except subprocess.TimeoutExpired:
            warnings.warn(
                f"rabbitmqctl delete_vhost {vhost} still running after {RABBITMQCTL_TIMEOUT}s", stacklevel=2
            )


class TcpProxy:
    """A TCP relay to a real server that a test can cut and restore, to play "the broker is down"."""

    def __init__(self, target_host: str, target_port: int):
        import threading

        self.target = (target_host, target_port)
        self.port = free_port()
        self._threading = threading
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(50)
        self._listener = listener
        self._threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self.cut()

    def cut(self) -> None:
        """Cut the open connections (a broker restart, a network blip); new ones are still accepted."""
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                connection.close()
            self._connections.clear()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
