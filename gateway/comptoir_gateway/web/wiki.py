"""The wiki's French pages: customers' wikis, page view, editor with preview, history, diff, merge on conflict.

Links meant for the ticket page (owned by the tickets interface): ``/wiki/customers/{customer_id}`` opens the
customer's wiki, and ``/wiki/new?customer_id=…&ticket=…`` opens the editor with a link to the ticket.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response

from comptoir_gateway.api.routes.wiki import attach_upload, attachment_response
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.web.rendering import render_page
from comptoir_gateway.web.routes import PostedForm, error_page, require_actor, submit_form

router = APIRouter(include_in_schema=False)


@router.get("/wiki")
async def wiki_home(
    request: Request, services: ServicesDep, q: str = "", customer_id: str = "", customer_q: str = ""
) -> Response:
    actor = require_actor(request)
    customers = await services.call("wiki", "list_customers", actor=actor)
    found_customers = None
    if customer_q.strip() and actor["role"] in ("admin", "agent"):
        found_customers = await services.call("wiki", "list_customers", actor=actor, query=customer_q)
    if actor["role"] in ("client", "reseller") and len(customers) == 1 and not q:
        return RedirectResponse(f"/wiki/customers/{customers[0]['id']}", status_code=303)
    results = None
    if q.strip():
        results = await services.call(
            "wiki", "search_pages", actor=actor, query=q, customer_id=customer_id or None, limit=50
        )
    general = None
    if actor["role"] in ("admin", "agent", "sales"):
        general = await services.call("wiki", "list_tree", actor=actor, customer_id=None)
    return render_page(
        request,
        "wiki_home.html",
        {
            "customers": customers,
            "results": results,
            "q": q,
            "customer_id": customer_id,
            "general": general,
            "customer_q": customer_q,
            "found_customers": found_customers,
        },
    )


@router.get("/wiki/customers/{customer_id}")
async def customer_wiki(customer_id: str, request: Request, services: ServicesDep, q: str = "") -> Response:
    """A customer's wiki: its pages as a tree, and a search limited to them."""
    actor = require_actor(request)
    tree = await services.call("wiki", "list_tree", actor=actor, customer_id=customer_id)
    results = None
    if q.strip():
        results = await services.call("wiki", "search_pages", actor=actor, query=q, customer_id=customer_id)
    return render_page(request, "wiki_customer.html", {"tree": tree, "results": results, "q": q})


@router.get("/wiki/general")
async def general_wiki(request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    tree = await services.call("wiki", "list_tree", actor=actor, customer_id=None)
    return render_page(request, "wiki_customer.html", {"tree": tree, "results": None, "q": ""})


@router.get("/wiki/new")
async def new_page(
    request: Request,
    services: ServicesDep,
    customer_id: str = "",
    ticket: str = "",
    parent_id: str = "",
    title: str = "",
) -> Response:
    """The editor for a new page; from a ticket (``ticket`` = its id) the content starts with a link to it."""
    actor = require_actor(request)
    content = ""
    if ticket:
        try:
            found = await services.call("tickets", "get_ticket", actor=actor, ticket_id=ticket)
        except HTTPException as exc:
            if exc.status_code >= 500:
                raise
            found = None
        if found:
            customer_id = customer_id or found.get("customer_id") or ""
            title = title or found["title"]
            content = (
                f"Page créée depuis la demande #{found['number']} « {found['title']} » "
                f"([ouvrir la demande](/tickets/{quote(found['id'])})).\n\n"
            )
        else:
            content = f"Page créée depuis la [demande](/tickets/{quote(ticket)}).\n\n"
    form = {"title": title, "content": content, "tags": "", "visible_to_customer": False}
    return render_page(
        request,
        "wiki_edit.html",
        {"page": None, "form": form, "customer_id": customer_id, "parent_id": parent_id},
    )


class WikiPageForm(PostedForm):
    """The wiki editor's form for a new page."""

    title: str = ""
    content: str = ""
    tags: str = ""
    customer_id: str = ""
    parent_id: str = ""
    visible_to_customer: str = ""
    comment: str = ""

    def tag_list(self) -> list[str]:
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]


class WikiEditForm(WikiPageForm):
    """The editor's form for an existing page: the revision it started from detects a concurrent save."""

    base_revision: int


@router.post("/wiki/new")
async def create_page(
    request: Request, services: ServicesDep, form: Annotated[WikiPageForm, Form()]
) -> Response:
    actor = require_actor(request)
    context = {
        "page": None,
        "form": form.values(),
        "customer_id": form.customer_id,
        "parent_id": form.parent_id,
    }
    return await submit_form(
        request,
        form.csrf_token,
        lambda: services.call(
            "wiki",
            "create_page",
            actor=actor,
            title=form.title,
            content=form.content,
            customer_id=form.customer_id or None,
            parent_id=form.parent_id or None,
            tags=form.tag_list(),
            visible_to_customer=bool(form.visible_to_customer),
            comment=form.comment or None,
        ),
        on_error=lambda message, status: render_page(
            request, "wiki_edit.html", context | {"error": message}, status_code=status
        ),
        on_success=lambda page: RedirectResponse(f"/wiki/pages/{page['id']}", status_code=303),
    )


@router.get("/wiki/pages/{page_id}")
async def view_page(page_id: str, request: Request, services: ServicesDep, saved: int = 0) -> Response:
    actor = require_actor(request)
    page = await services.call("wiki", "get_page", actor=actor, page_id=page_id)
    return render_page(request, "wiki_page.html", {"page": page, "saved": bool(saved)})


@router.get("/wiki/pages/{page_id}/edit")
async def edit_page(page_id: str, request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    page = await services.call("wiki", "get_page", actor=actor, page_id=page_id)
    if not page["can_edit"]:
        raise HTTPException(403, "Vous ne pouvez pas modifier cette page.")
    form = {
        "title": page["title"],
        "content": page["content"],
        "tags": ", ".join(page["tags"]),
        "visible_to_customer": page["visible_to_customer"],
        "base_revision": page["revision"],
    }
    return render_page(
        request,
        "wiki_edit.html",
        {
            "page": page,
            "form": form,
            "customer_id": page["customer_id"] or "",
            "parent_id": page["parent_id"] or "",
        },
    )


@router.post("/wiki/pages/{page_id}/edit")
async def save_page(
    page_id: str, request: Request, services: ServicesDep, form: Annotated[WikiEditForm, Form()]
) -> Response:
    """Save; if someone saved in between, show the three-way merge instead of overwriting their change."""
    actor = require_actor(request)
    page = await services.call("wiki", "get_page", actor=actor, page_id=page_id)
    context: dict[str, Any] = {
        "page": page,
        "form": form.values(),
        "customer_id": page["customer_id"] or "",
        "parent_id": form.parent_id,
    }
    # The refusal of a concurrent save carries the merge to show; on_error only receives its message.
    conflict: dict[str, Any] = {}

    async def save() -> None:
        try:
            await services.call(
                "wiki",
                "update_page",
                actor=actor,
                page_id=page_id,
                base_revision=form.base_revision,
                title=form.title,
                content=form.content,
                tags=form.tag_list(),
                parent_id=form.parent_id or None,
                visible_to_customer=bool(form.visible_to_customer),
                comment=form.comment or None,
            )
        except HTTPException as exc:
            if exc.status_code == 409 and isinstance(exc.detail, dict) and "merge" in exc.detail:
                conflict.update(exc.detail)
            raise

    def show_error(message: str, status: int) -> Response:
        if not conflict:
            return render_page(request, "wiki_edit.html", context | {"error": message}, status_code=status)
        merge = conflict["merge"]
        # The next save is based on the revision now current; the proposed text is the merge.
        context["form"] |= {"content": merge["text"], "base_revision": conflict["current_revision"]}
        return render_page(
            request,
            "wiki_edit.html",
            context | {"error": message, "merge": merge, "conflict": conflict},
            status_code=status,
        )

    return await submit_form(
        request,
        form.csrf_token,
        save,
        on_error=show_error,
        on_success=lambda _: RedirectResponse(f"/wiki/pages/{page_id}?saved=1", status_code=303),
    )


@router.get("/wiki/pages/{page_id}/history")
async def page_history(page_id: str, request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    history = await services.call("wiki", "list_revisions", actor=actor, page_id=page_id)
    return render_page(request, "wiki_history.html", history)


@router.get("/wiki/pages/{page_id}/revisions/{number}")
async def page_revision(page_id: str, number: int, request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    revision = await services.call("wiki", "get_revision", actor=actor, page_id=page_id, number=number)
    return render_page(request, "wiki_revision.html", {"revision": revision, "page": revision["page"]})


@router.get("/wiki/pages/{page_id}/diff")
async def page_diff(
    page_id: str,
    request: Request,
    services: ServicesDep,
    from_number: Annotated[int, Query(alias="from", ge=1)],
    to_number: Annotated[int, Query(alias="to", ge=1)],
) -> Response:
    actor = require_actor(request)
    diff = await services.call(
        "wiki", "diff_revisions", actor=actor, page_id=page_id, from_number=from_number, to_number=to_number
    )
    return render_page(request, "wiki_diff.html", {"diff": diff, "page": diff["page"]})


@router.post("/wiki/pages/{page_id}/restore")
async def restore_page(
    page_id: str,
    request: Request,
    services: ServicesDep,
    revision: Annotated[int, Form()],
    base_revision: Annotated[int, Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "wiki",
            "restore_revision",
            actor=actor,
            page_id=page_id,
            number=revision,
            base_revision=base_revision,
        ),
        on_error=error_page,
        on_success=lambda _: RedirectResponse(f"/wiki/pages/{page_id}?saved=1", status_code=303),
    )


def _json_error(message: str, status: int) -> Response:
    """The refusal for the editor's script (static/wiki-editor.js shows ``detail``)."""
    return JSONResponse({"detail": message}, status_code=status)


@router.post("/wiki/pages/{page_id}/attachments")
async def upload_attachment(
    page_id: str,
    request: Request,
    services: ServicesDep,
    file: UploadFile,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Attach a file from the page form, or (JSON answer) an image pasted into the editor."""
    actor = require_actor(request)
    wants_json = "application/json" in request.headers.get("accept", "")

    def attached(attachment: dict[str, Any]) -> Response:
        if wants_json:
            return JSONResponse(attachment, status_code=201)
        return RedirectResponse(f"/wiki/pages/{page_id}?saved=1", status_code=303)

    return await submit_form(
        request,
        csrf_token,
        lambda: attach_upload(request, services, actor, page_id, file),
        on_error=_json_error if wants_json else error_page,
        on_success=attached,
    )


@router.get("/wiki/attachments/{attachment_id}")
async def download_attachment(attachment_id: str, request: Request, services: ServicesDep):
    actor = require_actor(request)
    return await attachment_response(request, services, actor, attachment_id)


@router.post("/wiki/preview")
async def preview(
    request: Request,
    services: ServicesDep,
    content: Annotated[str, Form()] = "",
    customer_id: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Sanitised HTML of the draft, for the editor's preview (called by static/wiki-editor.js)."""
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "wiki", "preview", actor=actor, content=content, customer_id=customer_id or None
        ),
        on_error=_json_error,
        on_success=JSONResponse,
    )


@router.get("/wiki/tickets/{ticket_number}")
async def ticket_pages(ticket_number: int, request: Request, services: ServicesDep) -> Response:
    """Where a ``#1234`` in a page leads: the pages citing that ticket."""
    actor = require_actor(request)
    result = await services.call("wiki", "pages_citing_ticket", actor=actor, ticket_number=ticket_number)
    return render_page(request, "wiki_ticket.html", {"number": ticket_number, "pages": result["items"]})
