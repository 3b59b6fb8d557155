"""The whole system as real processes (service runners and the gateway) for end-to-end tests.

Each process runs in a process group of its own, stopped whole whatever ends the run (``comptoir_testing.processes``).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from comptoir_dev.registry import SERVICES, ServiceInfo, service

from comptoir_testing import infra
from comptoir_testing.fixtures import SmtpServer
from comptoir_testing.processes import start_process, stop_processes

DEFAULT_SERVICES = tuple(info.name for info in SERVICES)


class ProcessFailed(RuntimeError):
    pass


class SystemUnderTest:
    """Starts each service with its own PostgreSQL database, one vhost and one SMTP server, plus the gateway."""

    def __init__(
        self,
        workdir: Path,
        amqp_uri: str,
        database_urls: dict[str, str],
        smtp_url: str,
        extra_env: dict[str, str] | None = None,
    ):
        self.workdir = workdir
        self.amqp_uri = amqp_uri
        self.database_urls = database_urls
        self.smtp_url = smtp_url
        self.gateway_port = infra.free_port()
        self.base_url = f"http://127.0.0.1:{self.gateway_port}"
        self.secret_key = secrets.token_urlsafe(32)
        self.extra_env = extra_env or {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.health_ports: dict[str, int] = {}

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
        env |= {
            "AMQP_URI": self.amqp_uri,
            "SMTP_URL": self.smtp_url,
            "COMPTOIR_DATA_DIR": str(self.workdir / "data"),
            "COMPTOIR_PORT": str(self.gateway_port),
            "COMPTOIR_SECRET_KEY": self.secret_key,
            "COMPTOIR_PUBLIC_URL": self.base_url,
            "COMPTOIR_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
            # Tests that count failed sign-ins per address give each test an address of its own.
            "GATEWAY_TRUST_FORWARDED_FOR": "true",
            # Webhooks go to receivers on 127.0.0.1 over http, and come back quickly after a failure.
            "WEBHOOKS_ALLOW_HTTP": "true",
            "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            "WEBHOOKS_FIRST_RETRY_SECONDS": "0.5",
            "WEBHOOKS_MAX_RETRY_SECONDS": "2",
            "WEBHOOKS_TIMEOUT": "5",
            # A broker slow to answer on a loaded machine is not a broker that is down: wait longer than the default,
            # but give up before wait_healthy does, so that the failure shows the service's own account of it.
            "COMPTOIR_BROKER_WAIT": os.environ.get("COMPTOIR_BROKER_WAIT", "60"),
            # Several systems share one PostgreSQL in a test run: few idle connections each (benchmarks override).
            "COMPTOIR_DB_IDLE_CONNECTIONS": "3",
        }
        for name, url in self.database_urls.items():
            env[f"{service(name).env_prefix}DATABASE_URL"] = url
        return env | self.extra_env

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 60) -> str:
        path = self.log_path(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def launch(self, key: str, args: list[str], env: dict[str, str], health_port: int) -> str:
        """Start one process under ``key`` (its own process group, output in its log); returns the key."""
        self.processes[key] = start_process(args, env=env, log_path=self.log_path(key))
        self.health_ports[key] = health_port
        return key

    def start_service(self, name: str, instance: str | None = None, env: dict[str, str] | None = None) -> str:
        """Start one instance of a service (``instance`` names a second one); returns the process key.

        ``env`` adds settings for this instance only (e.g. a smaller ``<SERVICE>_MAX_WORKERS``)."""
        info: ServiceInfo = service(name)
        port = infra.free_port()
        env = self.env() | {f"{info.env_prefix}HEALTH_PORT": str(port)} | (env or {})
        return self.launch(instance or name, [sys.executable, "-m", info.package], env, port)

    def start_gateway(self) -> None:
        self.launch("gateway", [sys.executable, "-m", "comptoir_gateway"], self.env(), self.gateway_port)

    def start_extra_gateway(self, key: str = "gateway-2") -> str:
        """Another gateway instance on its own port (e.g. one started after a revocation); returns its base URL."""
        port = infra.free_port()
        env = self.env() | {"COMPTOIR_PORT": str(port)}
        self.launch(key, [sys.executable, "-m", "comptoir_gateway"], env, port)
        try:
            self.wait_healthy([key])
        except BaseException:
            self.stop_process(key)
            raise
        return f"http://127.0.0.1:{port}"

    def wait_healthy(self, keys: list[str] | None = None, timeout: float = 90.0) -> None:
        """Wait until each process answers ``/healthz``; ProcessFailed (with the log's tail) if one exits or is late.

        Under pytest-timeout's 180 s per test, which also times the fixture starting the system: a longer wait would
        end in its stack dump instead of the log tail."""
        deadline = time.monotonic() + timeout
        for key in keys or list(self.processes):
            url = f"http://127.0.0.1:{self.health_ports[key]}/healthz"
            while True:
                process = self.processes[key]
                if process.poll() is not None:
                    raise ProcessFailed(f"{key} exited with {process.returncode}:\n{self.log_tail(key)}")
                try:
                    if httpx.get(url, timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ProcessFailed(f"{key} not healthy after {timeout}s:\n{self.log_tail(key)}")
                time.sleep(0.2)

    def start(self, services: tuple[str, ...] = DEFAULT_SERVICES) -> None:
        """Start the services and the gateway and wait until all are healthy; on any failure, stop what started."""
        try:
            for name in services:
                self.start_service(name)
            self.start_gateway()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop_process(self, key: str, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        """Send ``sig`` to the process's group, then SIGKILL the group after ``timeout`` seconds."""
        process = self.processes.pop(key, None)
        if process is not None:
            stop_processes([process], sig, timeout)

    def kill(self, key: str) -> None:
        """SIGKILL one process (no clean shutdown: unacknowledged messages go back to their queues)."""
        self.stop_process(key, signal.SIGKILL)

    def metrics(self, key: str) -> str:
        """The Prometheus text exposition of one process (``/metrics`` on its health port)."""
        return httpx.get(f"http://127.0.0.1:{self.health_ports[key]}/metrics", timeout=5.0).text

    def metric_value(self, key: str, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when there is none)."""
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for family in text_string_to_metric_families(self.metrics(key)):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every process at once (SIGTERM to each group, then SIGKILL to the groups after ``timeout``)."""
        processes = list(self.processes.values())
        self.processes.clear()
        stop_processes(processes, timeout=timeout)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30.0, follow_redirects=True)

    def create_user(
        self,
        email: str,
        role: str,
        password: str = "Mot-de-passe-tres-long-1",
        customer_id: str | None = None,
        name=None,
    ) -> dict:
        """An account made directly in the auth service's store (as ``comptoir seed`` does)."""
        from comptoir_auth import users
        from comptoir_common.db import make_engine, make_session_factory, session_scope

        engine = make_engine(self.database_urls["auth"], pool_size=1)
        try:
            with session_scope(make_session_factory(engine)) as session:
                user = users.create_user(
                    session,
                    email=email,
                    name=name or email.split("@")[0].title(),
                    role=role,
                    password=password,
                    customer_id=customer_id,
                )
                return users.user_to_dict(user) | {"password": password}
        finally:
            engine.dispose()

    def login(self, client: httpx.Client, email: str, password: str) -> dict[str, str]:
        """Bearer headers for ``email``."""
        response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="session")
def system_smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture(scope="session")
def system(tmp_path_factory, amqp_uri, migrated_database, system_smtp) -> Iterator[SystemUnderTest]:
    """Every service and the gateway running as real processes over this run's databases and vhost."""
    sut = SystemUnderTest(
        workdir=tmp_path_factory.mktemp("system"),
        amqp_uri=amqp_uri,
        database_urls={name: migrated_database(name) for name in DEFAULT_SERVICES},
        smtp_url=system_smtp.url,
    )
    sut.smtp = system_smtp
    try:
        sut.start()
        yield sut
    finally:
        sut.stop()
