"""Outgoing webhooks (admins only; the webhooks service enforces it): subscriptions, their secret, the delivery
log, replays and test events. See docs/webhooks.md."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import CurrentActor

router = APIRouter(tags=["webhooks"])


class SubscriptionIn(BaseModel):
    name: str = Field(..., max_length=200)
    url: str = Field(..., max_length=2000)
    event_types: list[str] = Field(..., description="types from the catalogue, or patterns such as ticket.*")
    active: bool = True


class SubscriptionPatch(BaseModel):
    name: str | None = Field(None, max_length=200)
    url: str | None = Field(None, max_length=2000)
    event_types: list[str] | None = None
    active: bool | None = None


@router.get("/webhooks")
async def list_webhooks(actor: CurrentActor, services: ServicesDep) -> list[dict]:
    """Every subscription with its delivery counts by status."""
    return await services.call("webhooks", "list_subscriptions", actor=actor)


@router.post("/webhooks", status_code=201)
async def create_webhook(body: SubscriptionIn, actor: CurrentActor, services: ServicesDep) -> dict:
    """A new subscription. The answer's `secret` signs the deliveries and is shown only this once."""
    return await services.call("webhooks", "create_subscription", actor=actor, fields=body.model_dump())


@router.get("/webhooks/event-types")
async def webhook_event_types(actor: CurrentActor, services: ServicesDep) -> list[str]:
    """The event types a subscription may ask for (the catalogue)."""
    return await services.call("webhooks", "event_types", actor=actor)


@router.get("/webhooks/{subscription_id}")
async def get_webhook(subscription_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call("webhooks", "get_subscription", actor=actor, subscription_id=subscription_id)


@router.patch("/webhooks/{subscription_id}")
async def update_webhook(
    subscription_id: str, body: SubscriptionPatch, actor: CurrentActor, services: ServicesDep
) -> dict:
    return await services.call(
        "webhooks",
        "update_subscription",
        actor=actor,
        subscription_id=subscription_id,
        fields=body.model_dump(exclude_unset=True),
    )


@router.delete("/webhooks/{subscription_id}")
async def delete_webhook(subscription_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    """Remove the subscription and its delivery log."""
    return await services.call(
        "webhooks", "delete_subscription", actor=actor, subscription_id=subscription_id
    )


@router.post("/webhooks/{subscription_id}/rotate-secret")
async def rotate_webhook_secret(subscription_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    """A new secret (in the answer, shown once); the previous one keeps signing for an overlap period."""
    return await services.call("webhooks", "rotate_secret", actor=actor, subscription_id=subscription_id)


@router.post("/webhooks/{subscription_id}/test", status_code=202)
async def send_webhook_test(subscription_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    """Queue a `webhook.test` event for this subscription; the answer is the queued delivery."""
    return await services.call("webhooks", "send_test_event", actor=actor, subscription_id=subscription_id)


@router.get("/webhooks/{subscription_id}/deliveries")
async def list_webhook_deliveries(
    subscription_id: str,
    actor: CurrentActor,
    services: ServicesDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> dict:
    """The delivery log, newest first: status, attempts, last answer (code, start of the body), next retry."""
    return await services.call(
        "webhooks",
        "list_deliveries",
        actor=actor,
        subscription_id=subscription_id,
        status=status,
        limit=limit,
        offset=offset,
    )


@router.get("/webhooks/deliveries/{delivery_id}")
async def get_webhook_delivery(delivery_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    """One delivery, with the exact body sent."""
    return await services.call("webhooks", "get_delivery", actor=actor, delivery_id=delivery_id)


@router.post("/webhooks/deliveries/{delivery_id}/replay", status_code=202)
async def replay_webhook_delivery(delivery_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    """Send the delivery again (same event id and body), with a fresh set of attempts."""
    return await services.call("webhooks", "replay_delivery", actor=actor, delivery_id=delivery_id)
