"""The event catalogue for other systems: AsyncAPI document and JSON Schemas (public, like the OpenAPI document)."""

from __future__ import annotations

from comptoir_common import event_catalogue
from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

router = APIRouter(tags=["events"])


@router.get("/events")
async def list_events() -> list[dict]:
    """Every event type and version that Comptoir publishes, with its exchange and routing key."""
    return [
        {
            "type": spec.type,
            "version": spec.version,
            "service": spec.service,
            "exchange": spec.exchange,
            "routing_key": spec.routing_key,
            "summary": spec.summary,
            "schema_url": f"/api/v1/events/{spec.type}/v{spec.version}/schema.json",
        }
        for spec in event_catalogue.events()
    ]


@router.get("/events/asyncapi.json")
async def asyncapi() -> JSONResponse:
    """The AsyncAPI 3.0 document of every event (the same as docs/asyncapi.json)."""
    return JSONResponse(event_catalogue.asyncapi_document())


@router.get("/events/{event_type}/v{version}/schema.json")
async def event_schema(event_type: str, version: int) -> JSONResponse:
    """The self-contained JSON Schema (2020-12) of a whole message of this event type and version."""
    spec = event_catalogue.find(event_type, version)
    if spec is None:
        raise HTTPException(404, "Événement inconnu.")
    return JSONResponse(event_catalogue.envelope_schema(spec))
