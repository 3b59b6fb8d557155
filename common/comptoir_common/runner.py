"""Start one nameko service process: logs, migrations, health and metrics endpoint, then the service.

Each service's ``__main__`` calls ``eventlet.monkey_patch()`` before importing anything, then :func:`run_service`.
This runner does not use the ``nameko`` command line, which needs ``pkg_resources`` (gone from recent setuptools).
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import eventlet
import eventlet.wsgi
from kombu import Connection
from nameko.runners import ServiceRunner

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
    run_until_stopped([service_cls], config)


def run_until_stopped(services: list, config: dict) -> None:
    """Run nameko services until SIGTERM (or Ctrl-C), stopping them gracefully **once**.

    nameko's own ``run`` starts a new graceful stop on every SIGTERM. A second signal while the first stop waits for a
    long worker (a mailbox pass, a delivery batch) stops every extension again, and nameko's one-shot events raise
    "Trying to re-send() an already-triggered event" — the process then never exits. Here later signals are
    logged and ignored; a second Ctrl-C still kills at once.
    """
    runner = ServiceRunner(config)
    for service_cls in services:
        runner.add_service(service_cls)
    stopping: list[int] = []

    def shutdown(signum, frame) -> None:
        # Signal handlers run in the main loop and cannot use eventlet primitives: the stop runs in a greenlet.
        if stopping:
            log.info("signal %s while stopping: the stop in progress continues", signum)
            return
        stopping.append(signum)
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    runner.start()
    waiting = eventlet.spawn(runner.wait)
    while True:
        try:
            waiting.wait()
            return
        except OSError as exc:  # the signal interrupted a system call of the hub: go back to waiting
            if exc.errno != errno.EINTR:
                raise
        except KeyboardInterrupt:
            if stopping:
                runner.kill()
                return
            stopping.append(signal.SIGINT)
            try:
                runner.stop()
            except KeyboardInterrupt:
                runner.kill()
            return


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
