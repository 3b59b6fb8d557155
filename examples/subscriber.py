#!/usr/bin/env python3
"""An outside system subscribing to Comptoir's events with plain pika (no Comptoir code needed).

    python examples/subscriber.py --amqp-uri amqp://crm:secret@rabbitmq:5672/ \\
        --queue crm.ticket-events --bind tickets.events:ticket.* --bind auth.events:user.created \\
        --output events.jsonl

What it shows (see docs/events.md, "Subscribing from another system"):

- a durable **quorum** queue of its own, bound to the routing keys it wants: while the subscriber is stopped, events
  wait in that queue, so it misses nothing;
- **manual acknowledgements**, sent only after the event is processed (here: appended to a JSON-lines file and
  flushed to disk); an event being processed when the subscriber dies is delivered again;
- **duplicates ignored** by event id (delivery is at least once);
- a poison message (one that keeps failing) is dead-lettered to ``<queue>.dead`` after a few attempts instead of
  blocking the queue;
- reconnection with backoff when the broker restarts; a clean stop on SIGTERM or Ctrl-C.

Only the Python standard library and pika are used, so the file can be copied into another code base.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import pika
from pika.exceptions import AMQPConnectionError, ChannelClosedByBroker, ConnectionClosedByBroker

log = logging.getLogger("subscriber")

DELIVERY_LIMIT = 5


class Subscriber:
    def __init__(self, amqp_uri: str, queue: str, bindings: list[tuple[str, str]], output: Path):
        self.amqp_uri = amqp_uri
        self.queue = queue
        self.bindings = bindings
        self.output = output
        self.seen: set[str] = set()
        self.stopping = False
        self.connection: pika.BlockingConnection | None = None
        self.channel = None
        if output.exists():
            # The processed ids survive restarts: here they are in the output file itself. A real system keeps
            # them next to its data (e.g. a table with a unique key, written in the same transaction).
            for line in output.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self.seen.add(json.loads(line)["id"])

    def declare(self, channel) -> None:
        dead = f"{self.queue}.dead"
        channel.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_declare(
            self.queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",  # replicated, survives a broker node loss
                "x-delivery-limit": DELIVERY_LIMIT,  # then dead-lettered instead of looping for ever
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": dead,
            },
        )
        for exchange, routing_key in self.bindings:
            channel.exchange_declare(exchange, exchange_type="topic", durable=True)
            channel.queue_bind(self.queue, exchange, routing_key=routing_key)

    def process(self, event: dict) -> None:
        """Your business logic. Must be idempotent or, as here, skip ids already processed."""
        if event["id"] in self.seen:
            log.info("duplicate %s ignored", event["id"])
            return
        with self.output.open("a", encoding="utf-8") as out:
            out.write(json.dumps(event, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.seen.add(event["id"])
        log.info("processed %s %s", event["type"], event["id"])

    def on_message(self, channel, method, properties, body: bytes) -> None:
        try:
            event = json.loads(body)
            self.process(event)
        except Exception:
            log.exception("processing failed; the event will be delivered again")
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        channel.basic_ack(method.delivery_tag)  # only once the effect is durable

    def run(self) -> None:
        backoff = 1.0
        while not self.stopping:
            try:
                self.connection = pika.BlockingConnection(pika.URLParameters(self.amqp_uri))
                self.channel = self.connection.channel()
                self.declare(self.channel)
                self.channel.basic_qos(prefetch_count=20)
                self.channel.basic_consume(self.queue, self.on_message)
                print(f"ready: consuming {self.queue}", flush=True)
                backoff = 1.0
                self.channel.start_consuming()
            except (AMQPConnectionError, ConnectionClosedByBroker, ChannelClosedByBroker) as exc:
                if self.stopping:
                    break
                log.warning("broker unavailable (%s); reconnecting in %.0fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                if self.connection is not None and self.connection.is_open:
                    self.connection.close()

    def stop(self, *_args) -> None:
        self.stopping = True
        if self.connection is not None and self.channel is not None:
            # Called from a signal handler: ask the I/O loop to stop after the current message.
            self.connection.add_callback_threadsafe(self.channel.stop_consuming)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Subscribe to Comptoir events with a durable queue of your own."
    )
    parser.add_argument(
        "--amqp-uri", default=os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument("--queue", required=True, help="your queue, e.g. crm.ticket-events")
    parser.add_argument(
        "--bind",
        action="append",
        required=True,
        metavar="EXCHANGE:ROUTING_KEY",
        help="e.g. tickets.events:ticket.* (repeat for several)",
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON-lines file of processed events")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    bindings = [tuple(item.split(":", 1)) for item in args.bind]
    subscriber = Subscriber(args.amqp_uri, args.queue, bindings, args.output)
    signal.signal(signal.SIGTERM, subscriber.stop)
    signal.signal(signal.SIGINT, subscriber.stop)
    subscriber.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
