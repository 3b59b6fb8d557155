"""Start one nameko service process: logs, migrations, health and metrics endpoint, then the service.

Each service's ``__main__`` calls ``eventlet.monkey_patch()`` before importing anything, then :func:`run_service`.
This runner does not use the ``nameko`` command line, which needs ``pkg_resources`` (gone from recent setuptools).
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import eventlet
import eventlet.wsgi
from kombu import Connection
from nameko.cli.run import run

from comptoir_common.health import register_check, wsgi_app
from comptoir_common.logs import configure_logging
from comptoir_common.migrations import upgrade
from comptoir_common.settings import ServiceSettings

log = logging.getLogger(__name__)


def broker_reachable(amqp_uri: str, timeout: float = 3.0) -> str | None:
    """None if the broker answers; otherwise a sentence saying what is wrong."""
    parts = urlsplit(amqp_uri)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return f"RabbitMQ is not reachable at {host}:{port} ({exc.strerror or exc})"
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"RabbitMQ at {host}:{port} refused the connection: {exc}"
    return None


def wait_for_broker(
    amqp_uri: str, wait: float, on_retry: Callable[[str], None] = lambda problem: None
) -> str | None:
    """None once the broker answers; the last problem if it still does not after ``wait`` seconds.

    A broker that is starting, or busy on a loaded machine, is not one that is down: callers wait a while.
    """
    problem = broker_reachable(amqp_uri)
    deadline = time.monotonic() + wait
    while problem and time.monotonic() < deadline:
        on_retry(problem)
        time.sleep(2.0)
        problem = broker_reachable(amqp_uri)
    return problem


def _check_broker(amqp_uri: str):
    def check() -> None:
        problem = broker_reachable(amqp_uri, timeout=2.0)
        if problem:
            raise ConnectionError(problem)

    return check


def run_service(service_cls, settings: ServiceSettings, migrations_dir: Path) -> None:
    """Run ``service_cls`` until SIGTERM or Ctrl-C."""
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    problem = wait_for_broker(
        settings.amqp_uri,
        settings.broker_wait,
        on_retry=lambda problem: log.warning(
            "%s; retrying for up to %.0fs (COMPTOIR_BROKER_WAIT)", problem, settings.broker_wait
        ),
    )
    if problem:
        log.error("%s: start RabbitMQ (rabbitmq-server -detached) or set AMQP_URI", problem)
        sys.exit(2)
    database_url = settings.effective_database_url
    upgrade(migrations_dir, database_url)
    log.info("migrations applied", extra={"database": _redacted(database_url)})

    register_check("amqp", _check_broker(settings.amqp_uri))
    health_socket = eventlet.listen(("0.0.0.0", settings.health_port))
    health_port = health_socket.getsockname()[1]
    eventlet.spawn_n(eventlet.wsgi.server, health_socket, wsgi_app(settings.service_name), log_output=False)
    log.info("service starting", extra={"health_port": health_port, "max_workers": settings.max_workers})

    config = settings.nameko_config() | {"DATABASE_URL": database_url}
    run([service_cls], config)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
