"""Helpers for the tickets end-to-end tests: contract-shaped directory events, directory customers, people, polling,
sign-in through the login page (plain HTTP or a browser)."""

from __future__ import annotations

import json
import re
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


def directory_customer(http, admin: Person, name: str, sales_rep: Person | None = None, **fields) -> str:
    """A customer entered in crm_sync by an admin (optionally given a sales rep), once the tickets service has it."""
    created = http.post("/api/v1/customers", json={"name": name} | fields, headers=admin.headers)
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    if sales_rep is not None:
        # crm_sync knows the sales rep once auth's user.created has reached it.
        wait_until(
            lambda: (
                http.put(
                    f"/api/v1/customers/{customer_id}/sales-rep",
                    json={"sales_rep_id": sales_rep.id},
                    headers=admin.headers,
                ).status_code
                == 200
            ),
            what="sales rep known to crm_sync",
        )
    # In the sales rep's own list once the tickets service has learnt who their sales rep is.
    wait_until(
        lambda: any(
            c["id"] == customer_id
            for c in http.get("/api/v1/tickets/options", headers=(sales_rep or admin).headers).json()[
                "customers"
            ]
        ),
        what="customer in the tickets read model",
    )
    return customer_id


def form_login(http, email: str, password: str) -> str:
    """Sign in through the login page (session cookie); the CSRF token of the session."""
    page = http.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = http.post("/login", data={"email": email, "password": password, "csrf_token": csrf})
    assert response.status_code == 200, response.text
    return csrf


def web_login(http, person: Person) -> str:
    """``form_login`` as ``person``."""
    return form_login(http, person.email, person.password)


def sign_in_browser(browser, system, person: Person):
    """A browser context signed in as ``person`` through the login page, and its page on the dashboard."""
    context = browser.new_context(base_url=system.base_url, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto("/login")
    page.fill("#email", person.email)
    page.fill("#password", person.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{system.base_url}/")
    return context, page
