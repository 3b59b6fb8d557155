"""Import of the old helpdesk's tickets (Simplydesk), for ``comptoir import simplydesk`` and the admin page.

The files are read by the client (``comptoir_common.ticket_import``); batches of normalised tickets come here. The
tickets service decides who may import (admins) and what importing means; the gateway only adds what crm_sync knows
about requesters and customer keys (``import_hints``), and stores attachment files in the blob store.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from comptoir_gateway import import_hints
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import CurrentActor
from comptoir_gateway.uploads import attachment_limit, check_content_length, store_uploads, uploaded_files

router = APIRouter(prefix="/imports/simplydesk", tags=["import"])


class ImportBatchIn(BaseModel):
    tickets: list[dict[str, Any]] = Field(max_length=500)
    dry_run: bool = False


@router.get("/status")
async def import_status(actor: CurrentActor, services: ServicesDep) -> dict:
    """How many tickets were imported, the highest imported number and the next ticket number (admins)."""
    return await services.call("tickets", "import_status", actor=actor)


@router.post("/batch")
async def import_batch(body: ImportBatchIn, actor: CurrentActor, services: ServicesDep) -> dict:
    """Import (or with ``dry_run``, simulate) up to 500 tickets; idempotent on the old ticket number."""
    # Refused before any crm_sync look-up if the caller may not import.
    await services.call("tickets", "import_status", actor=actor)
    hints, crm_available = await import_hints.resolve(services, actor, body.tickets)
    answer = await services.call(
        "tickets", "import_tickets", actor=actor, batch=body.tickets, hints=hints, dry_run=body.dry_run
    )
    return answer | {"crm_available": crm_available}


@router.post("/files")
async def import_files(request: Request, actor: CurrentActor, services: ServicesDep) -> dict:
    """Store attachment files of the export; answers their blob references for the batches."""
    await services.call("tickets", "import_status", actor=actor)
    limit = await attachment_limit(services, actor)
    check_content_length(request, limit)
    form = await request.form()
    return {"files": await store_uploads(request, uploaded_files(form), limit)}
