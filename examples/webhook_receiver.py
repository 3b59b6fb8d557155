#!/usr/bin/env python3
"""An outside system receiving Comptoir's webhooks (Python standard library only: copy it anywhere).

    COMPTOIR_WEBHOOK_SECRET=whsec_… python examples/webhook_receiver.py --port 8080 --output events.jsonl

What it shows (see docs/webhooks.md):

- the **signature** check: HMAC-SHA256 of ``<X-Comptoir-Timestamp>.<raw body>`` with the subscription's secret,
  compared in constant time with each ``v1=`` value of ``X-Comptoir-Signature`` (two values while a rotated secret
  still signs);
- **replay protection**: a timestamp more than five minutes away from now is refused (a captured request cannot be
  sent again later), and event ids already processed are acknowledged without being processed twice (Comptoir
  delivers at least once);
- the **answers** Comptoir understands: 2xx = received; 5xx, 408, 429 = try again later (with backoff); any other
  4xx = refused for good (the delivery is marked failed; an admin can replay it).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300


def verify(
    secret: str, headers, body: bytes, now: float | None = None, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """True if ``body`` was signed by Comptoir with ``secret`` less than ``tolerance`` seconds ago."""
    try:
        timestamp = int(headers["X-Comptoir-Timestamp"])
        signatures = headers["X-Comptoir-Signature"]
    except (KeyError, TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, value.strip()) for value in signatures.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--output", default="events.jsonl")
    args = parser.parse_args()
    secret = os.environ["COMPTOIR_WEBHOOK_SECRET"]
    seen: set[str] = set()  # in a real system: a unique column in the same transaction as the effect

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not verify(secret, self.headers, body):
                self.send_response(401)  # permanent: Comptoir will not retry a forged or stale request
                self.end_headers()
                return
            event = json.loads(body)
            if event["id"] not in seen:
                with open(args.output, "a", encoding="utf-8") as out:
                    out.write(json.dumps(event, ensure_ascii=False) + "\n")
                seen.add(event["id"])
            self.send_response(204)
            self.end_headers()

    ThreadingHTTPServer(("0.0.0.0", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
