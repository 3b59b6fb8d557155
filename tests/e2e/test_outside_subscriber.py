"""examples/subscriber.py, run as another system would: it misses nothing while it is down, and sees each event once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pika
from comptoir_testing.processes import start_process, stop_processes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscriber.py"


def _start(system, queue: str, output: Path, log: Path) -> subprocess.Popen:
    process = start_process(
        [sys.executable, str(EXAMPLE), "--amqp-uri", system.amqp_uri, "--queue", queue,
         "--bind", "tickets.events:ticket.created", "--output", str(output)],
        log_path=log,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while f"ready: consuming {queue}" not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, "subscriber did not start"
        time.sleep(0.1)
    return process


def _processed(output: Path) -> list[dict]:
    if not output.exists():
        return []
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines() if line.strip()]


def _wait_for_ticket_ids(output: Path, ticket_ids: set[str], timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        events = _processed(output)
        if ticket_ids <= {e["data"]["id"] for e in events}:
            return events
        assert time.monotonic() < deadline, f"missing {ticket_ids - {e['data']['id'] for e in events}}"
        time.sleep(0.2)


def _queue_depth(amqp_uri: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def test_subscriber_misses_nothing_while_down(system, tmp_path):
    queue = f"it.subscriber-{uuid.uuid4().hex[:6]}"
    output, log = tmp_path / "events.jsonl", tmp_path / "subscriber.log"
    email = f"abonne.{uuid.uuid4().hex[:6]}@client.example"
    user = system.create_user(email, "client", customer_id=str(uuid.uuid4()))
    with system.client() as http:
        headers = system.login(http, email, user["password"])

        def create(n: int) -> set[str]:
            ids = set()
            for i in range(n):
                response = http.post(
                    "/api/v1/tickets", json={"title": f"Abonné {i}", "message": "Test."}, headers=headers
                )
                assert response.status_code == 201, response.text
                ids.add(response.json()["id"])
            return ids

        subscriber = _start(system, queue, output, log)
        try:
            before = create(2)
            _wait_for_ticket_ids(output, before)

            stop_processes([subscriber], timeout=15)
            assert subscriber.returncode == 0
            while_down = create(5)
            # The events wait in the subscriber's own durable queue.
            deadline = time.monotonic() + 20
            while _queue_depth(system.amqp_uri, queue) < 5:
                assert time.monotonic() < deadline, "events did not reach the durable queue"
                time.sleep(0.2)
            assert not while_down & {e["data"]["id"] for e in _processed(output)}

            subscriber = _start(system, queue, output, log)
            events = _wait_for_ticket_ids(output, before | while_down)
        finally:
            stop_processes([subscriber], timeout=15)
    mine = [e for e in events if e["data"]["id"] in before | while_down]
    assert len(mine) == 7 and len({e["id"] for e in mine}) == 7  # each once
    assert _queue_depth(system.amqp_uri, queue) == 0  # everything acknowledged
    connection = pika.BlockingConnection(pika.URLParameters(system.amqp_uri))
    channel = connection.channel()
    channel.queue_delete(queue)
    channel.queue_delete(f"{queue}.dead")
    connection.close()


def test_subscriber_ignores_redelivered_duplicates(tmp_path):
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import subscriber as example
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    output = tmp_path / "events.jsonl"
    first = example.Subscriber("amqp://unused/", "q", [], output)
    event = {"id": str(uuid.uuid4()), "type": "ticket.created", "data": {"id": "t"}}
    first.process(event)
    first.process(event)
    # A restarted subscriber remembers what it processed before.
    example.Subscriber("amqp://unused/", "q", [], output).process(event)
    assert len(_processed(output)) == 1
