"""A readable page of the event catalogue (``/evenements``), for the teams that subscribe to Comptoir's events."""

from __future__ import annotations

import json

from comptoir_common import event_catalogue
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from comptoir_gateway.security import optional_actor
from comptoir_gateway.web.rendering import render_page

router = APIRouter(include_in_schema=False)


@router.get("/evenements", response_class=HTMLResponse)
async def events_page(request: Request) -> HTMLResponse:
    request.state.actor = optional_actor(request)
    specs = [
        {
            "spec": spec,
            "anchor": spec.key.replace(".", "-"),
            "schema": json.dumps(
                event_catalogue.envelope_schema(spec)["properties"]["data"], indent=2, ensure_ascii=False
            ),
            "example": json.dumps(spec.example_envelope(), indent=2, ensure_ascii=False),
        }
        for spec in event_catalogue.events()
    ]
    return render_page(
        request,
        "events.html",
        {
            "specs": specs,
            "exchanges": event_catalogue.exchanges(),
            "compatibility": event_catalogue.COMPATIBILITY,
        },
    )
