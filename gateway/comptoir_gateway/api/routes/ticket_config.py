"""Ticket configuration (admins): statuses, types, priorities and targets, business calendar, canned responses."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import CurrentActor

router = APIRouter(prefix="/config/tickets", tags=["configuration"])

Resource = Literal["statuses", "types", "priorities", "canned_responses"]


class ItemIn(BaseModel):
    """Fields by resource — statuses: label, category; types: label; priorities: label, target_minutes;
    canned_responses: title, body (placeholders {client}, {numero}, {agent})."""

    label: str | None = Field(None, max_length=100)
    category: Literal["new", "open", "pending", "closed"] | None = None
    target_minutes: int | None = Field(None, ge=1)
    position: int | None = None
    is_default: bool | None = None
    title: str | None = Field(None, max_length=200)
    body: str | None = Field(None, max_length=20_000)


class OrderIn(BaseModel):
    keys: list[str]


class CalendarIn(BaseModel):
    timezone: str = "Europe/Paris"
    opening: str = Field("08:30", pattern=r"^\d{2}:\d{2}$")
    closing: str = Field("18:00", pattern=r"^\d{2}:\d{2}$")
    workdays: list[int] = Field([0, 1, 2, 3, 4], description="0 = lundi … 6 = dimanche")
    french_holidays: bool = True
    extra_holidays: list[str] = Field(default_factory=list, description="Dates AAAA-MM-JJ")


class LimitIn(BaseModel):
    bytes: int = Field(ge=1024)


_KEY_PARAM = {"canned_responses": "canned_id"}


def _params(resource: str, item: ItemIn) -> dict[str, Any]:
    fields = {
        "statuses": ("label", "category"),
        "types": ("label", "position"),
        "priorities": ("label", "target_minutes", "position", "is_default"),
        "canned_responses": ("title", "body"),
    }[resource]
    return {k: v for k, v in item.model_dump().items() if k in fields and v is not None}


@router.get("")
async def get_configuration(actor: CurrentActor, services: ServicesDep) -> dict:
    """The whole ticket configuration."""
    return await services.call("tickets", "get_configuration", actor=actor)


@router.post("/{resource}", status_code=201)
async def add_item(resource: Resource, item: ItemIn, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call(
        "tickets", "configure", actor=actor, resource=resource, operation="add", **_params(resource, item)
    )


@router.put("/statuses/order")
async def reorder_statuses(body: OrderIn, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call(
        "tickets", "configure", actor=actor, resource="statuses", operation="reorder", keys=body.keys
    )


@router.patch("/{resource}/{key}")
async def update_item(
    resource: Resource, key: str, item: ItemIn, actor: CurrentActor, services: ServicesDep
) -> dict:
    params = _params(resource, item) | {_KEY_PARAM.get(resource, "key"): key}
    return await services.call(
        "tickets", "configure", actor=actor, resource=resource, operation="update", **params
    )


@router.delete("/{resource}/{key}")
async def remove_item(
    resource: Resource, key: str, actor: CurrentActor, services: ServicesDep, replacement: str | None = None
) -> dict:
    """Remove an item; a status or priority in use needs ``replacement`` (409 otherwise)."""
    params: dict[str, Any] = {_KEY_PARAM.get(resource, "key"): key}
    if resource != "canned_responses":
        params["replacement"] = replacement
    return await services.call(
        "tickets", "configure", actor=actor, resource=resource, operation="remove", **params
    )


@router.put("/calendar")
async def set_calendar(body: CalendarIn, actor: CurrentActor, services: ServicesDep) -> dict:
    """Business hours and holidays; every running deadline is recomputed."""
    return await services.call(
        "tickets", "configure", actor=actor, resource="calendar", operation="set", config=body.model_dump()
    )


@router.put("/attachment-limit")
async def set_attachment_limit(body: LimitIn, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call(
        "tickets",
        "configure",
        actor=actor,
        resource="attachment_limit",
        operation="set",
        limit_bytes=body.bytes,
    )
