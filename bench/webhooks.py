"""Outgoing webhooks: events published on the bus → deliveries → POSTs to a real receiver; throughput and CPU.

Starts its own system (databases, a vhost, every process), subscribes a local receiver to ``wiki.page_updated``
(an event type no other service consumes, so only the webhooks service works), publishes N envelopes straight to
``wiki.events`` and waits until the receiver has them all. Then the same with a receiver that takes ``--slow-ms``
per request, to show that one instance sends one delivery at a time.

    flock /work/bench.lock .venv/bin/python bench/webhooks.py [--events 2000] [--slow-events 100 --slow-ms 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).parent))
from _system import running_system  # noqa: E402
from comptoir_testing.webhook_receiver import WebhookReceiver  # noqa: E402
from create_tickets import cpu_seconds  # noqa: E402


def publish(amqp_uri: str, count: int) -> set[str]:
    ids = set()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for index in range(count):
            event_id = str(uuid.uuid4())
            envelope = {
                "id": event_id, "type": "wiki.page_updated", "version": 1,
                "occurred_at": "2026-11-28T08:00:00+00:00", "actor": {"kind": "system", "id": None, "name": "bench"},
                "data": {"id": str(uuid.uuid4()), "title": f"Page {index}", "revision": 2, "changes": {}},
            }  # fmt: skip
            channel.basic_publish(
                "wiki.events", "wiki.page_updated", json.dumps(envelope).encode(),
                pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=event_id),
            )  # fmt: skip
            ids.add(event_id)
    finally:
        connection.close()
    return ids


def run(system, headers, receiver: WebhookReceiver, count: int, label: str) -> None:
    with system.client() as http:
        created = http.post(
            "/api/v1/webhooks",
            json={"name": label, "url": receiver.url, "event_types": ["wiki.page_updated"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        pid = system.processes["webhooks"].pid
        cpu_before, started = cpu_seconds(pid), time.perf_counter()
        ids = publish(system.amqp_uri, count)
        published = time.perf_counter() - started
        last_report = 0
        while True:
            got = len({r.json["id"] for r in receiver.accepted(lambda r: True)} & ids)
            if got >= count:
                break
            if time.perf_counter() - last_report > 5:
                print(f"  {label}: {got}/{count} received", flush=True)
                last_report = time.perf_counter()
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before
        duplicates = len(receiver.requests) - len({r.json["id"] for r in receiver.requests})
        http.delete(f"/api/v1/webhooks/{created.json()['id']}", headers=headers)
    print(
        f"{label}: {count} events published in {published:.1f}s, all received after {elapsed:.1f}s "
        f"({count / elapsed:.0f} deliveries/s end to end); webhooks process CPU {cpu:.1f}s "
        f"= {cpu / count * 1000:.1f} ms per delivery; duplicates at the receiver: {duplicates}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--slow-events", type=int, default=100)
    parser.add_argument("--slow-ms", type=int, default=50)
    args = parser.parse_args()
    with running_system("webhooks") as system:
        admin = system.create_user("bench-admin@comptoir.example", "admin")
        with system.client() as http:
            headers = system.login(http, admin["email"], admin["password"])
        fast = WebhookReceiver().start()
        try:
            run(system, headers, fast, 100, "warm-up")
            fast.requests.clear()
            run(system, headers, fast, args.events, "fast receiver")
        finally:
            fast.stop()
        slow = WebhookReceiver()
        slow.delay = args.slow_ms / 1000
        slow.start()
        try:
            run(system, headers, slow, args.slow_events, f"receiver taking {args.slow_ms} ms")
        finally:
            slow.stop()
    print(
        "(machine shared with other engineers: wall-clock figures are noisy; CPU per delivery is the steadier one)"
    )


if __name__ == "__main__":
    main()
