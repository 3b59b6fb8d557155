"""Sending due deliveries: signed POSTs, retried with exponential backoff, shared by every instance.

Outcome of one attempt:

- 2xx: delivered.
- 408, 429, 5xx, a timeout, a connection or protocol error: retried after ``first_retry_seconds * 2**(n-1)``
  (capped at ``max_retry_seconds``, at least a 429's ``Retry-After``), until ``max_attempts`` attempts or
  ``max_age_hours`` after it was queued; then failed.
- any other status (3xx — redirects are not followed —, 4xx) or a refused address: failed at once (permanent).

A failed delivery stays in the log; an admin replays it.
"""

from __future__ import annotations

import http.client
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from comptoir_common.db import utcnow
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from comptoir_webhooks import signing
from comptoir_webhooks.models import Delivery, Subscription
from comptoir_webhooks.subscriptions import MAX_RESPONSE_BODY_KEPT, TEST_EVENT_TYPE, signing_secrets
from comptoir_webhooks.targets import TargetRefused, TargetRules, post

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "comptoir_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed)",
    ["outcome"],
)
DELIVERY_DURATION = Histogram(
    "comptoir_webhook_delivery_duration_seconds",
    "Time of one webhook POST (connect, send, first bytes of the answer)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BACKLOG = Gauge("comptoir_webhook_backlog", "Webhook deliveries pending (last pass)", ["state"])
OLDEST_PENDING = Gauge(
    "comptoir_webhook_oldest_pending_seconds", "Age of the oldest pending webhook delivery (last pass)"
)

USER_AGENT = "Comptoir-Webhooks/1"
RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class DeliveryPolicy:
    rules: TargetRules
    timeout: float = 10.0
    first_retry_seconds: float = 10.0
    max_retry_seconds: float = 3600.0
    max_attempts: int = 15
    max_age_hours: float = 48.0

    @classmethod
    def from_config(cls, config: dict) -> DeliveryPolicy:
        return cls(
            rules=TargetRules(
                allow_http=bool(config.get("allow_http")),
                allow_private=bool(config.get("allow_private_targets")),
            ),
            timeout=float(config.get("timeout", 10.0)),
            first_retry_seconds=float(config.get("first_retry_seconds", 10.0)),
            max_retry_seconds=float(config.get("max_retry_seconds", 3600.0)),
            max_attempts=int(config.get("max_attempts", 15)),
            max_age_hours=float(config.get("max_age_hours", 48.0)),
        )

    def retry_delay(self, attempts: int, retry_after: float | None = None) -> float:
        delay = min(self.first_retry_seconds * 2 ** max(0, attempts - 1), self.max_retry_seconds)
        # Up to 10% jitter: deliveries that failed together do not all come back in the same second.
        delay *= 1 + random.random() * 0.1
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_seconds))
        return delay


def claim_next_due(session: Session, skip_subscriptions: set[str]) -> Delivery | None:
    """The oldest due delivery of an active subscription (or a test event), locked: other instances skip it."""
    query = (
        select(Delivery)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(
            Delivery.status == "pending",
            Delivery.next_attempt_at <= utcnow(),
            or_(Subscription.active.is_(True), Delivery.event_type == TEST_EVENT_TYPE),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    if skip_subscriptions:
        query = query.where(Delivery.subscription_id.not_in(skip_subscriptions))
    return session.scalar(query)


def build_request(
    delivery: Delivery, subscription: Subscription, timestamp: int
) -> tuple[bytes, dict[str, str]]:
    body = delivery.body.encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Comptoir-Event-Id": delivery.event_id,
        "X-Comptoir-Event-Type": delivery.event_type,
        "X-Comptoir-Delivery-Id": delivery.id,
        "X-Comptoir-Timestamp": str(timestamp),
        "X-Comptoir-Signature": signing.signature_header(signing_secrets(subscription), timestamp, body),
    }
    return body, headers


def attempt(session: Session, delivery: Delivery, policy: DeliveryPolicy) -> str:
    """One POST of ``delivery``, its outcome recorded on the row (the caller commits): delivered, retry or failed."""
    subscription = session.get(Subscription, delivery.subscription_id)
    body, headers = build_request(delivery, subscription, int(time.time()))
    delivery.attempts += 1
    delivery.last_attempt_at = utcnow()
    started = time.perf_counter()
    status_code: int | None = None
    retry_after: float | None = None
    try:
        response = post(subscription.url, body, headers, timeout=policy.timeout, rules=policy.rules)
        status_code, retry_after = response.status, response.retry_after
        delivery.last_response_body = response.body[:MAX_RESPONSE_BODY_KEPT]
        delivery.last_error = None
        if 200 <= status_code < 300:
            outcome = "delivered"
        elif status_code in RETRY_STATUSES or status_code >= 500:
            outcome = "retry"
            delivery.last_error = f"HTTP {status_code}"
        else:
            outcome = "failed"
            delivery.last_error = f"HTTP {status_code} : refus définitif" + (
                " (redirection non suivie)" if 300 <= status_code < 400 else ""
            )
    except TargetRefused as exc:
        outcome = "failed"
        delivery.last_response_body = None
        delivery.last_error = f"Adresse refusée : {exc}"
    except (OSError, http.client.HTTPException) as exc:
        outcome = "retry"
        delivery.last_response_body = None
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:1000]
    elapsed = time.perf_counter() - started
    DELIVERY_DURATION.observe(elapsed)
    delivery.last_status_code = status_code
    delivery.last_duration_ms = int(elapsed * 1000)
    if outcome == "delivered":
        delivery.status = "delivered"
        delivery.delivered_at = utcnow()
    elif outcome == "failed":
        delivery.status = "failed"
    else:
        too_old = utcnow() - delivery.queued_at >= timedelta(hours=policy.max_age_hours)
        if delivery.attempts >= policy.max_attempts or too_old:
            outcome = "failed"
            delivery.status = "failed"
            delivery.last_error = f"{delivery.last_error} — abandon après {delivery.attempts} tentatives"
        else:
            delivery.next_attempt_at = utcnow() + timedelta(
                seconds=policy.retry_delay(delivery.attempts, retry_after)
            )
    DELIVERIES.labels(outcome).inc()
    log.log(
        logging.INFO if outcome == "delivered" else logging.WARNING,
        "webhook %s",
        outcome,
        extra={
            "delivery_id": delivery.id,
            "subscription_id": delivery.subscription_id,
            "event_type": delivery.event_type,
            "attempts": delivery.attempts,
            "status_code": status_code,
            "error": delivery.last_error,
        },
    )
    return outcome


def run_lane(session: Session, policy: DeliveryPolicy, failing: set[str], budget: Iterator[int]) -> None:
    """Send due deliveries one after the other, committing each outcome, while ``budget`` (shared by the lanes of
    a pass) lasts. A subscription whose target just failed joins ``failing`` and is not tried again in this pass:
    a dead receiver (timeouts) must not hold up the others."""
    for _ in budget:
        due = claim_next_due(session, failing)
        if due is None:
            return
        if attempt(session, due, policy) == "retry":
            failing.add(due.subscription_id)
        session.commit()


def measure_backlog(session: Session) -> None:
    now = utcnow()
    due, waiting, oldest = session.execute(
        select(
            func.count().filter(Delivery.next_attempt_at <= now),
            func.count().filter(Delivery.next_attempt_at > now),
            func.min(Delivery.queued_at),
        ).where(Delivery.status == "pending")
    ).one()
    BACKLOG.labels("due").set(due or 0)
    BACKLOG.labels("waiting").set(waiting or 0)
    OLDEST_PENDING.set((now - oldest).total_seconds() if oldest else 0)
