"""The customer directory (crm_sync): the service checks who may read or change what."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import CurrentActor

router = APIRouter(prefix="/customers", tags=["customers"])


class AddressIn(BaseModel):
    street: str | None = Field(None, max_length=300)
    postal_code: str | None = Field(None, max_length=20)
    city: str | None = Field(None, max_length=200)
    country: str | None = Field(None, max_length=100)


class ContactIn(BaseModel):
    id: str | None = Field(None, max_length=200, description="keep an existing contact (its id)")
    name: str = Field("", max_length=200)
    emails: list[str] = Field(default_factory=list, max_length=20)
    phone: str | None = Field(None, max_length=50)
    role: str | None = Field(None, max_length=200)


class CustomerIn(BaseModel):
    name: str = Field(min_length=1, max_length=300)
    account_number: str | None = Field(None, max_length=50)
    phone: str | None = Field(None, max_length=50)
    addresses: list[AddressIn] = Field(default_factory=list, max_length=10)
    email_domains: list[str] = Field(default_factory=list, max_length=20)
    parent_customer_id: str | None = Field(None, max_length=36)
    sales_rep_id: str | None = Field(None, max_length=36)
    contacts: list[ContactIn] | None = Field(None, max_length=200)


class SalesRepIn(BaseModel):
    sales_rep_id: str | None = Field(None, max_length=36)


class SyncIn(BaseModel):
    full: bool = False


@router.get("")
async def list_customers(
    actor: CurrentActor,
    services: ServicesDep,
    search: str | None = Query(None, max_length=200),
    source: str | None = Query(None, pattern="^(filemaker|quadra|manual)$"),
    active: bool | None = None,
    sales_rep_id: str | None = Query(None, max_length=36),
    parent_customer_id: str | None = Query(None, max_length=36),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """Customers you may see (admins and agents: all; sales reps: their own), by name."""
    return await services.call(
        "crm_sync",
        "list_customers",
        actor=actor,
        search=search,
        source=source,
        active=active,
        sales_rep_id=sales_rep_id,
        parent_customer_id=parent_customer_id,
        limit=limit,
        offset=offset,
    )


@router.post("", status_code=201)
async def create_customer(body: CustomerIn, actor: CurrentActor, services: ServicesDep) -> dict[str, Any]:
    """Add a customer by hand (admins)."""
    return await services.call("crm_sync", "create_customer", actor=actor, customer=body.model_dump())


@router.get("/sync/status")
async def sync_status(actor: CurrentActor, services: ServicesDep) -> dict[str, Any]:
    """FileMaker and Quadra: last run, duration, counts, last error (admins)."""
    return await services.call("crm_sync", "sync_status", actor=actor)


@router.post("/sync", status_code=202)
async def request_sync(body: SyncIn, actor: CurrentActor, services: ServicesDep) -> dict[str, Any]:
    """Ask for a FileMaker pass now (``full`` also deactivates customers gone from FileMaker); admins."""
    return await services.call("crm_sync", "request_sync", actor=actor, full=body.full)


@router.get("/{customer_id}")
async def get_customer(customer_id: str, actor: CurrentActor, services: ServicesDep) -> dict[str, Any]:
    return await services.call("crm_sync", "show_customer", actor=actor, customer_id=customer_id)


@router.put("/{customer_id}")
async def update_customer(
    customer_id: str, body: CustomerIn, actor: CurrentActor, services: ServicesDep
) -> dict[str, Any]:
    """Edit a customer entered by hand (admins); synchronised customers are edited in their source."""
    return await services.call(
        "crm_sync", "update_customer", actor=actor, customer_id=customer_id, customer=body.model_dump()
    )


@router.post("/{customer_id}/deactivate")
async def deactivate_customer(customer_id: str, actor: CurrentActor, services: ServicesDep) -> dict[str, Any]:
    return await services.call(
        "crm_sync", "set_customer_active", actor=actor, customer_id=customer_id, active=False
    )


@router.post("/{customer_id}/reactivate")
async def reactivate_customer(customer_id: str, actor: CurrentActor, services: ServicesDep) -> dict[str, Any]:
    return await services.call(
        "crm_sync", "set_customer_active", actor=actor, customer_id=customer_id, active=True
    )


@router.put("/{customer_id}/sales-rep")
async def assign_sales_rep(
    customer_id: str, body: SalesRepIn, actor: CurrentActor, services: ServicesDep
) -> dict[str, Any]:
    return await services.call(
        "crm_sync", "assign_sales_rep", actor=actor, customer_id=customer_id, sales_rep_id=body.sales_rep_id
    )
