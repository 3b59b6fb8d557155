"""Helpers for the tickets end-to-end tests: contract-shaped directory events, people, polling."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pika


def publish_event(amqp_uri: str, source: str, event_type: str, data: dict) -> None:
    """Publish an event as the producing service would (envelope, exchange ``<source>.events``, routing key)."""
    envelope = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "actor": {"kind": "system", "id": None, "name": source},
        "data": data,
    }
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.exchange_declare(f"{source}.events", exchange_type="topic", durable=True)
        channel.basic_publish(
            f"{source}.events",
            event_type,
            json.dumps(envelope),
            pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=envelope["id"]),
        )
    finally:
        connection.close()


def customer_upserted(amqp_uri: str, name: str, sales_rep_id=None, parent_customer_id=None) -> str:
    customer_id = str(uuid.uuid4())
    publish_event(
        amqp_uri,
        "crm_sync",
        "customer.upserted",
        {
            "id": customer_id,
            "name": name,
            "source": "filemaker",
            "external_key": customer_id[:8],
            "account_number": None,
            "addresses": [],
            "phone": None,
            "email_domains": [],
            "sales_rep_id": sales_rep_id,
            "parent_customer_id": parent_customer_id,
            "active": True,
            "extra": {},
        },
    )
    return customer_id


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout}s")


class Person:
    def __init__(self, system, http, role: str, customer_id: str | None = None, name: str | None = None):
        email = f"{role}.{uuid.uuid4().hex[:8]}@example.test"
        self.user = system.create_user(email, role, customer_id=customer_id, name=name)
        self.id = self.user["id"]
        self.role = role
        self.headers = system.login(http, email, self.user["password"])
        self.email = email
        self.password = self.user["password"]
