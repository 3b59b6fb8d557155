"""Health checks and Prometheus metrics of a service process, served over HTTP.

Each dependency registers a named check; ``/healthz`` runs them all (200 when every check passes, 503 otherwise)
and ``/metrics`` exposes the process's Prometheus registry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

_checks: dict[str, Callable[[], None]] = {}


def register_check(name: str, check: Callable[[], None]) -> None:
    """``check`` raises when the component is unhealthy."""
    _checks[name] = check


def run_checks() -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    healthy = True
    for name, check in list(_checks.items()):
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # a health check reports every failure, whatever its kind
            healthy = False
            results[name] = f"{type(exc).__name__}: {exc}"
    return healthy, results


def wsgi_app(service: str):
    """A WSGI app with ``/healthz`` and ``/metrics``."""

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body = generate_latest()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path in ("/healthz", "/health", "/"):
            healthy, results = run_checks()
            body = json.dumps({"service": service, "status": "ok" if healthy else "error", "checks": results})
            start_response(
                "200 OK" if healthy else "503 Service Unavailable", [("Content-Type", "application/json")]
            )
            return [body.encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return app
