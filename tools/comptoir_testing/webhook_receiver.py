"""A real HTTP server standing in for an outside system that receives webhooks (tests only).

It keeps every request (headers, body), answers with the status the test chooses (``respond_with``), can be stopped
and started again on the same port (a receiver that is down, then back), and lets tests wait for what they expect.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from comptoir_testing import infra


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, port: int | None = None):
        self.port = port or infra.free_port()
        self.requests: list[ReceivedRequest] = []  # the ones answered with a 2xx
        self.refused = 0  # requests answered with another status
        self.status = 200
        self.answer = b'{"ok": true}'
        self.answer_headers: dict[str, str] = {}
        self.delay = 0.0  # seconds before answering (a slow receiver)
        # When set, each request waits (up to 10 s) until this many are in flight at once: proves concurrency.
        self.gather = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._condition = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/comptoir"

    def respond_with(self, status: int, answer: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.status, self.answer, self.answer_headers = status, answer, headers or {}

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._condition:
                    receiver.in_flight += 1
                    receiver.peak_in_flight = max(receiver.peak_in_flight, receiver.in_flight)
                    receiver._condition.notify_all()
                    if receiver.gather:
                        receiver._condition.wait_for(
                            lambda: receiver.in_flight >= receiver.gather, timeout=10
                        )
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, answer = receiver.status, receiver.answer
                with receiver._condition:
                    if 200 <= status < 300:
                        receiver.requests.append(
                            ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                        )
                    else:
                        receiver.refused += 1
                    receiver.in_flight -= 1
                    receiver._condition.notify_all()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                for name, value in receiver.answer_headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self, predicate: Callable[[ReceivedRequest], bool]) -> list[ReceivedRequest]:
        """The requests answered with a 2xx that match ``predicate``."""
        with self._condition:
            return [r for r in self.requests if predicate(r)]

    def wait_for(
        self, predicate: Callable[[ReceivedRequest], bool], timeout: float = 30.0
    ) -> ReceivedRequest:
        with self._condition:
            self._condition.wait_for(lambda: any(predicate(r) for r in self.requests), timeout=timeout)
            found = [r for r in self.requests if predicate(r)]
        if not found:
            seen = [r.headers.get("x-comptoir-event-type") for r in self.requests][-20:]
            raise AssertionError(f"no matching webhook within {timeout}s; received: {seen}")
        return found[0]
