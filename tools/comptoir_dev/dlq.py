"""Dead-letter queues: ``comptoir dlq list`` and ``comptoir dlq replay``.

An event whose handler failed ``EVENT_DELIVERY_LIMIT`` times is moved by RabbitMQ to ``dlq.<queue>`` (see
``comptoir_common.nameko_ext``). Once the cause is fixed, replay puts each message back where it died:

- by default into the queue it was dead-lettered from (AMQP default exchange, routing key = that queue's name, as
  recorded in the message's ``x-death`` header): only the consumer that failed sees it again;
- with ``--via-exchange``, republished to its source exchange with its original routing key (both from
  ``x-death``): every queue bound to that key receives it again (Comptoir's consumers ignore events they already
  processed; outside subscribers must too — delivery is at least once).

Each message is republished with publisher confirms before it is acknowledged in the dead-letter queue, so a crash
mid-replay duplicates at most one message and loses none. A replay handles at most the messages present when it
started, so a message that fails again is not replayed in a loop.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pika
from pika.exceptions import ChannelClosedByBroker

DLQ_PREFIX = "dlq."


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str
    messages: int
    consumers: int


def known_dead_letter_queues(service_classes=None) -> list[str]:
    """``dlq.<queue>`` of every event handler of the registered services (or of ``service_classes``)."""
    from comptoir_common.nameko_ext import ReliableEventHandler, event_queues

    if service_classes is None:
        from comptoir_dev.registry import SERVICES

        service_classes = [info.load_service_class() for info in SERVICES]
    names = []
    for service_cls in service_classes:
        for method_name in dir(service_cls):
            for entrypoint in getattr(getattr(service_cls, method_name), "nameko_entrypoints", ()):
                if isinstance(entrypoint, ReliableEventHandler):
                    _, dead = event_queues(
                        entrypoint.source_service, entrypoint.event_type, service_cls.name, method_name
                    )
                    names.append(dead.name)
    return sorted(names)


def inspect(amqp_uri: str, queue_names: list[str]) -> list[DeadLetterQueue]:
    """Depth of each named dead-letter queue (passive declare: a queue that does not exist is skipped)."""
    found = []
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        for name in queue_names:
            channel = connection.channel()
            try:
                ok = channel.queue_declare(name, passive=True)
            except ChannelClosedByBroker:
                continue
            found.append(DeadLetterQueue(name, ok.method.message_count, ok.method.consumer_count))
            channel.close()
    finally:
        connection.close()
    return found


def _origin(properties) -> tuple[str, str, str]:
    """(queue, exchange, routing key) where the message died first, from its ``x-death`` header."""
    deaths = (properties.headers or {}).get("x-death") or []
    if not deaths:
        raise ValueError("message without x-death header: not dead-lettered by RabbitMQ")
    # The newest entry is first; the original source is the entry whose exchange is not the dead-letter one.
    for death in reversed(deaths):
        queue = death.get("queue")
        exchange = death.get("exchange")
        routing_keys = death.get("routing-keys") or []
        if queue and not str(queue).startswith(DLQ_PREFIX):
            return str(queue), str(exchange or ""), str(routing_keys[0] if routing_keys else "")
    death = deaths[0]
    return str(death["queue"]), str(death.get("exchange") or ""), str((death.get("routing-keys") or [""])[0])


def replay(amqp_uri: str, dlq_name: str, *, via_exchange: bool = False, limit: int | None = None) -> int:
    """Move up to ``limit`` (default: all present now) messages of ``dlq_name`` back; return how many moved."""
    if not dlq_name.startswith(DLQ_PREFIX):
        raise ValueError(f"{dlq_name!r} is not a dead-letter queue (they are named {DLQ_PREFIX}<queue>)")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    moved = 0
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        present = channel.queue_declare(dlq_name, passive=True).method.message_count
        budget = present if limit is None else min(limit, present)
        while moved < budget:
            method, properties, body = channel.basic_get(dlq_name, auto_ack=False)
            if method is None:
                break
            queue, exchange, routing_key = _origin(properties)
            headers = {
                k: v
                for k, v in (properties.headers or {}).items()
                if k not in ("x-delivery-count", "x-death")
            }
            headers["x-comptoir-replayed-from"] = dlq_name
            republished = pika.BasicProperties(
                content_type=properties.content_type,
                content_encoding=properties.content_encoding,
                headers=headers,
                delivery_mode=2,
                message_id=properties.message_id,
                correlation_id=properties.correlation_id,
                timestamp=properties.timestamp,
                type=properties.type,
            )
            if via_exchange:
                channel.basic_publish(exchange, routing_key, body, republished, mandatory=True)
            else:
                channel.basic_publish("", queue, body, republished, mandatory=True)
            channel.basic_ack(method.delivery_tag)
            moved += 1
    finally:
        connection.close()
    return moved


def main(args) -> int:
    from comptoir_common.settings import CommonSettings

    amqp_uri = CommonSettings().amqp_uri
    if args.action == "list":
        queues = inspect(amqp_uri, known_dead_letter_queues())
        if not queues:
            print("no dead-letter queue declared yet (run `comptoir migrate`)")
        for queue in queues:
            print(f"{queue.messages:8d}  {queue.name}")
        return 0
    if args.all:
        names = [queue.name for queue in inspect(amqp_uri, known_dead_letter_queues()) if queue.messages]
    elif args.queue:
        names = [args.queue if args.queue.startswith(DLQ_PREFIX) else DLQ_PREFIX + args.queue]
    else:
        print("name a dead-letter queue (see `comptoir dlq list`) or pass --all", file=sys.stderr)
        return 2
    for name in names:
        moved = replay(amqp_uri, name, via_exchange=args.via_exchange, limit=args.limit)
        print(f"{moved:8d}  replayed from {name}")
    return 0
