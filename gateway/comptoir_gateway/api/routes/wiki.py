"""Wiki: pages by customer, revisions, diff, restore, search, attachments. The wiki service applies the rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, UploadFile
from pydantic import BaseModel, Field

from comptoir_gateway import uploads
from comptoir_gateway.rpc import Services, ServicesDep
from comptoir_gateway.security import CurrentActor

router = APIRouter(prefix="/wiki", tags=["wiki"])

# The wiki service checks the size again (WIKI_MAX_ATTACHMENT_BYTES); this stops a huge upload early.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class PageIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    content: str = Field("", max_length=500_000)
    customer_id: str | None = Field(None, description="Client de la page ; absent pour une page générale")
    parent_id: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)
    visible_to_customer: bool = Field(
        False, description="Visible par les contacts du client dans leur portail"
    )
    comment: str | None = Field(None, max_length=300)


class PageUpdateIn(BaseModel):
    base_revision: int = Field(ge=1, description="Révision à partir de laquelle la modification a été faite")
    title: str | None = Field(None, min_length=1, max_length=200)
    content: str | None = Field(None, max_length=500_000)
    parent_id: str | None = None
    tags: list[str] | None = Field(None, max_length=20)
    visible_to_customer: bool | None = None
    comment: str | None = Field(None, max_length=300)


class RestoreIn(BaseModel):
    revision: int = Field(ge=1)
    base_revision: int = Field(ge=1)


class PreviewIn(BaseModel):
    content: str = Field("", max_length=500_000)
    customer_id: str | None = None


async def attach_upload(
    request: Request, services: Services, actor: dict, page_id: str, upload: UploadFile
) -> dict:
    """Stream the upload into the blob store (shared ``uploads``); the wiki service checks its type and rights."""
    try:
        (stored,) = await uploads.store_uploads(request, [upload], MAX_UPLOAD_BYTES)
    except HTTPException as exc:
        if exc.status_code == 413:
            raise HTTPException(
                413, f"Le fichier dépasse la taille maximale ({MAX_UPLOAD_BYTES // (1024 * 1024)} Mo)."
            ) from exc
        raise
    return await services.call(
        "wiki",
        "add_attachment",
        actor=actor,
        page_id=page_id,
        blob_key=stored["blob_key"],
        filename=upload.filename,
    )


async def attachment_response(request: Request, services: Services, actor: dict, attachment_id: str):
    """The attachment's bytes, if the caller may read its page; served with the shared safe headers."""
    attachment = await services.call("wiki", "get_attachment", actor=actor, attachment_id=attachment_id)
    return uploads.download_response(request, attachment, preview=False)


@router.get("/customers")
async def list_customers(
    actor: CurrentActor,
    services: ServicesDep,
    q: str | None = Query(None, max_length=100, description="Staff: customers whose name contains this"),
) -> list[dict[str, Any]]:
    """The customers whose wiki you may open, with the number of pages you can read (staff: those with pages,
    or those matching ``q``)."""
    return await services.call("wiki", "list_customers", actor=actor, query=q)


@router.get("/tree")
async def page_tree(actor: CurrentActor, services: ServicesDep, customer_id: str | None = None) -> dict:
    """One customer's pages as a tree (or the general pages without ``customer_id``)."""
    return await services.call("wiki", "list_tree", actor=actor, customer_id=customer_id)


@router.get("/pages")
async def search_pages(
    actor: CurrentActor,
    services: ServicesDep,
    q: str | None = Query(None, max_length=300, description="Mots cherchés dans les titres et les contenus"),
    customer_id: str | None = None,
    general: bool = Query(False, description="Seulement les pages générales"),
    tag: str | None = Query(None, max_length=50),
    limit: int = Query(50, ge=1, le=200),
) -> dict:
    """Search the pages you may read (French full-text), optionally of one customer or tag."""
    return await services.call(
        "wiki",
        "search_pages",
        actor=actor,
        query=q,
        customer_id=customer_id,
        general=general,
        tag=tag,
        limit=limit,
    )


@router.post("/pages", status_code=201)
async def create_page(body: PageIn, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call("wiki", "create_page", actor=actor, **body.model_dump())


@router.get("/pages/{page_id}")
async def get_page(page_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    """A page with its Markdown ``content`` and its sanitised ``html``."""
    return await services.call("wiki", "get_page", actor=actor, page_id=page_id)


@router.put("/pages/{page_id}")
async def update_page(page_id: str, body: PageUpdateIn, actor: CurrentActor, services: ServicesDep) -> dict:
    """Save a change made from ``base_revision``. If someone saved in between: 409 with ``merge`` (a three-way
    merge, conflicts between markers) and ``current_revision`` to base the next attempt on."""
    changes = body.model_dump(exclude_unset=True)
    return await services.call("wiki", "update_page", actor=actor, page_id=page_id, **changes)


@router.get("/pages/{page_id}/revisions")
async def list_revisions(page_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call("wiki", "list_revisions", actor=actor, page_id=page_id)


@router.get("/pages/{page_id}/revisions/{number}")
async def get_revision(page_id: str, number: int, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call("wiki", "get_revision", actor=actor, page_id=page_id, number=number)


@router.get("/pages/{page_id}/diff")
async def diff_revisions(
    page_id: str,
    actor: CurrentActor,
    services: ServicesDep,
    from_revision: int = Query(ge=1, alias="from"),
    to_revision: int = Query(ge=1, alias="to"),
) -> dict:
    """Line differences between two revisions."""
    return await services.call(
        "wiki",
        "diff_revisions",
        actor=actor,
        page_id=page_id,
        from_number=from_revision,
        to_number=to_revision,
    )


@router.post("/pages/{page_id}/restore")
async def restore_revision(page_id: str, body: RestoreIn, actor: CurrentActor, services: ServicesDep) -> dict:
    """Make an old revision current again (as a new revision)."""
    return await services.call(
        "wiki",
        "restore_revision",
        actor=actor,
        page_id=page_id,
        number=body.revision,
        base_revision=body.base_revision,
    )


@router.post("/pages/{page_id}/attachments", status_code=201)
async def add_attachment(
    page_id: str, file: UploadFile, request: Request, actor: CurrentActor, services: ServicesDep
) -> dict:
    """Attach a file or an image (type checked from its bytes). Show an image with ``![](url)``."""
    return await attach_upload(request, services, actor, page_id, file)


@router.get("/attachments/{attachment_id}")
async def get_attachment(attachment_id: str, request: Request, actor: CurrentActor, services: ServicesDep):
    return await attachment_response(request, services, actor, attachment_id)


@router.post("/preview")
async def preview(body: PreviewIn, actor: CurrentActor, services: ServicesDep) -> dict:
    """The sanitised HTML of a draft."""
    return await services.call(
        "wiki", "preview", actor=actor, content=body.content, customer_id=body.customer_id
    )


@router.get("/tickets/{ticket_number}/pages")
async def pages_citing_ticket(ticket_number: int, actor: CurrentActor, services: ServicesDep) -> dict:
    """The pages that cite ticket ``#ticket_number``."""
    return await services.call("wiki", "pages_citing_ticket", actor=actor, ticket_number=ticket_number)
