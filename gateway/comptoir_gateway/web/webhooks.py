"""Admin pages of outgoing webhooks (French): subscriptions, their secret (shown once), the delivery log with a
replay button, and a test event. Each page calls the webhooks service, which refuses anyone but an admin."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import csrf_valid
from comptoir_gateway.web.rendering import error_text, render_page
from comptoir_gateway.web.routes import CSRF_MESSAGE, require_actor

router = APIRouter(prefix="/admin/webhooks", include_in_schema=False)

PAGE_SIZE = 50
NOTICES = {
    "saved": "Les modifications sont enregistrées.",
    "deleted": "L'abonnement est supprimé.",
    "test": "Un événement de test est en file d'envoi ; son sort s'affiche dans le journal ci-dessous.",
    "replayed": "L'envoi est remis en file ; il repart avec un nouveau jeu de tentatives.",
}
STATUS_LABELS = {"pending": "En attente", "delivered": "Livré", "failed": "Échec"}


def _fields(name: str, url: str, event_types: str, active: str) -> dict[str, Any]:
    return {"name": name, "url": url, "event_types": event_types, "active": active == "1"}


async def _list_page(request: Request, services, actor: dict, **extra: Any) -> Response:
    subscriptions = await services.call("webhooks", "list_subscriptions", actor=actor)
    event_types = await services.call("webhooks", "event_types", actor=actor)
    status_code = extra.pop("status_code", 200)
    return render_page(
        request,
        "admin/webhooks.html",
        {
            "subscriptions": subscriptions,
            "event_types": event_types,
            "form": extra.pop("form", None) or {"event_types": "ticket.*", "active": True},
            **extra,
        },
        status_code=status_code,
    )


@router.get("")
async def webhooks_page(request: Request, services: ServicesDep, notice: str = "") -> Response:
    actor = require_actor(request)
    return await _list_page(request, services, actor, notice=NOTICES.get(notice))


@router.post("")
async def create_webhook(
    request: Request,
    services: ServicesDep,
    name: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    event_types: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    actor = require_actor(request)
    form = _fields(name, url, event_types, active)
    if not csrf_valid(request, csrf_token):
        return await _list_page(request, services, actor, form=form, error=CSRF_MESSAGE, status_code=400)
    try:
        created = await services.call("webhooks", "create_subscription", actor=actor, fields=form)
    except HTTPException as exc:
        if exc.status_code >= 500 or exc.status_code in (403, 404):
            raise
        return await _list_page(
            request, services, actor, form=form, error=error_text(exc), status_code=exc.status_code
        )
    # Rendered, not redirected: the secret must not travel in a URL, and it is shown only this once.
    return await _detail_page(request, services, actor, created["id"], secret=created["secret"])


async def _detail_page(
    request: Request,
    services,
    actor: dict,
    subscription_id: str,
    status: str = "",
    page: int = 1,
    **extra: Any,
) -> Response:
    subscription = await services.call(
        "webhooks", "get_subscription", actor=actor, subscription_id=subscription_id
    )
    page = max(1, page)
    deliveries = await services.call(
        "webhooks",
        "list_deliveries",
        actor=actor,
        subscription_id=subscription_id,
        status=status or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    status_code = extra.pop("status_code", 200)
    form = extra.pop("form", None) or {
        **subscription,
        "event_types": ", ".join(subscription["event_types"]),
    }
    return render_page(
        request,
        "admin/webhook.html",
        {
            "subscription": subscription,
            "form": form,
            "deliveries": deliveries,
            "status": status,
            "page": page,
            "pages": max(1, -(-deliveries["total"] // PAGE_SIZE)),
            "query": urlencode({"status": status} if status else {}),
            "STATUS_LABELS": STATUS_LABELS,
            **extra,
        },
        status_code=status_code,
    )


@router.get("/{subscription_id}")
async def webhook_page(
    subscription_id: str,
    request: Request,
    services: ServicesDep,
    status: str = "",
    page: int = 1,
    notice: str = "",
) -> Response:
    actor = require_actor(request)
    if status not in ("", *STATUS_LABELS):
        status = ""
    return await _detail_page(
        request, services, actor, subscription_id, status=status, page=page, notice=NOTICES.get(notice)
    )


async def _act(
    request: Request, services, page_of: str, csrf_token: str, method: str, form=None, **kwargs: Any
) -> tuple[Any, Response | None]:
    """Call ``webhooks.<method>`` for a form of the page of subscription ``page_of``: (result, None), or (None, that
    page again with the error) for an expired form or a refusal the admin can correct."""
    actor = require_actor(request)
    if not csrf_valid(request, csrf_token):
        page = await _detail_page(
            request, services, actor, page_of, form=form, error=CSRF_MESSAGE, status_code=400
        )
        return None, page
    try:
        return await services.call("webhooks", method, actor=actor, **kwargs), None
    except HTTPException as exc:
        if exc.status_code >= 500 or exc.status_code in (403, 404):
            raise
        page = await _detail_page(
            request,
            services,
            actor,
            page_of,
            form=form,
            error=error_text(exc),
            status_code=exc.status_code,
        )
        return None, page


@router.post("/{subscription_id}")
async def update_webhook(
    subscription_id: str,
    request: Request,
    services: ServicesDep,
    name: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    event_types: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    form = _fields(name, url, event_types, active)
    _, page = await _act(
        request, services, subscription_id, csrf_token, "update_subscription", form=form,
        subscription_id=subscription_id, fields=form,
    )  # fmt: skip
    return page or RedirectResponse(f"/admin/webhooks/{subscription_id}?notice=saved", status_code=303)


@router.post("/{subscription_id}/secret")
async def rotate_webhook_secret(
    subscription_id: str, request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    rotated, page = await _act(
        request, services, subscription_id, csrf_token, "rotate_secret", subscription_id=subscription_id
    )
    if page:
        return page
    # Rendered, not redirected: the new secret is shown this once.
    return await _detail_page(
        request, services, request.state.actor, subscription_id, secret=rotated["secret"], rotated=True
    )


@router.post("/{subscription_id}/test")
async def send_webhook_test(
    subscription_id: str, request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    _, page = await _act(
        request, services, subscription_id, csrf_token, "send_test_event", subscription_id=subscription_id
    )
    return page or RedirectResponse(f"/admin/webhooks/{subscription_id}?notice=test", status_code=303)


@router.post("/{subscription_id}/supprimer")
async def delete_webhook(
    subscription_id: str, request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    _, page = await _act(
        request, services, subscription_id, csrf_token, "delete_subscription", subscription_id=subscription_id
    )
    return page or RedirectResponse("/admin/webhooks?notice=deleted", status_code=303)


@router.post("/{subscription_id}/envois/{delivery_id}/rejouer")
async def replay_webhook_delivery(
    subscription_id: str,
    delivery_id: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    _, page = await _act(
        request, services, subscription_id, csrf_token, "replay_delivery", delivery_id=delivery_id
    )
    return page or RedirectResponse(f"/admin/webhooks/{subscription_id}?notice=replayed", status_code=303)
