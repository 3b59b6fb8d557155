"""Admin pages of outgoing webhooks (French): subscriptions, their secret (shown once), the delivery log with a
replay button, and a test event. Each page calls the webhooks service, which refuses anyone but an admin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.web.rendering import render_page
from comptoir_gateway.web.routes import PostedForm, require_actor, submit_form

router = APIRouter(prefix="/admin/webhooks", include_in_schema=False)

PAGE_SIZE = 50
NOTICES = {
    "saved": "Les modifications sont enregistrées.",
    "deleted": "L'abonnement est supprimé.",
    "test": "Un événement de test est en file d'envoi ; son sort s'affiche dans le journal ci-dessous.",
    "replayed": "L'envoi est remis en file ; il repart avec un nouveau jeu de tentatives.",
}
STATUS_LABELS = {"pending": "En attente", "delivered": "Livré", "failed": "Échec"}


class WebhookForm(PostedForm):
    """A subscription's form (new and edit)."""

    name: str = ""
    url: str = ""
    event_types: str = ""
    active: str = ""

    def fields(self) -> dict[str, Any]:
        """The subscription's fields for the webhooks service (and the form shown again)."""
        return {
            "name": self.name,
            "url": self.url,
            "event_types": self.event_types,
            "active": self.active == "1",
        }


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
    request: Request, services: ServicesDep, form: Annotated[WebhookForm, Form()]
) -> Response:
    actor = require_actor(request)
    fields = form.fields()
    return await submit_form(
        request,
        form.csrf_token,
        lambda: services.call("webhooks", "create_subscription", actor=actor, fields=fields),
        on_error=lambda message, status: _list_page(
            request, services, actor, form=fields, error=message, status_code=status
        ),
        # Rendered, not redirected: the secret must not travel in a URL, and it is shown only this once.
        on_success=lambda created: _detail_page(
            request, services, actor, created["id"], secret=created["secret"]
        ),
        propagate=(403, 404),
    )


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


async def _submit(
    request: Request,
    services,
    page_of: str,
    csrf_token: str,
    method: str,
    *,
    on_success: Callable[[Any], Response | Awaitable[Response]],
    form: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Response:
    """Post a form of the page of subscription ``page_of`` to ``webhooks.<method>``; a refusal the admin can correct
    shows that page again (with ``form`` as typed)."""
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("webhooks", method, actor=actor, **kwargs),
        on_error=lambda message, status: _detail_page(
            request, services, actor, page_of, form=form, error=message, status_code=status
        ),
        on_success=on_success,
        propagate=(403, 404),
    )


@router.post("/{subscription_id}")
async def update_webhook(
    subscription_id: str, request: Request, services: ServicesDep, form: Annotated[WebhookForm, Form()]
) -> Response:
    fields = form.fields()
    return await _submit(
        request,
        services,
        subscription_id,
        form.csrf_token,
        "update_subscription",
        on_success=lambda _: RedirectResponse(
            f"/admin/webhooks/{subscription_id}?notice=saved", status_code=303
        ),
        form=fields,
        subscription_id=subscription_id,
        fields=fields,
    )


@router.post("/{subscription_id}/secret")
async def rotate_webhook_secret(
    subscription_id: str, request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    return await _submit(
        request,
        services,
        subscription_id,
        csrf_token,
        "rotate_secret",
        # Rendered, not redirected: the new secret is shown this once.
        on_success=lambda rotated: _detail_page(
            request, services, request.state.actor, subscription_id, secret=rotated["secret"], rotated=True
        ),
        subscription_id=subscription_id,
    )


@router.post("/{subscription_id}/test")
async def send_webhook_test(
    subscription_id: str, request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    return await _submit(
        request,
        services,
        subscription_id,
        csrf_token,
        "send_test_event",
        on_success=lambda _: RedirectResponse(
            f"/admin/webhooks/{subscription_id}?notice=test", status_code=303
        ),
        subscription_id=subscription_id,
    )


@router.post("/{subscription_id}/supprimer")
async def delete_webhook(
    subscription_id: str, request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    return await _submit(
        request,
        services,
        subscription_id,
        csrf_token,
        "delete_subscription",
        on_success=lambda _: RedirectResponse("/admin/webhooks?notice=deleted", status_code=303),
        subscription_id=subscription_id,
    )


@router.post("/{subscription_id}/envois/{delivery_id}/rejouer")
async def replay_webhook_delivery(
    subscription_id: str,
    delivery_id: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    return await _submit(
        request,
        services,
        subscription_id,
        csrf_token,
        "replay_delivery",
        on_success=lambda _: RedirectResponse(
            f"/admin/webhooks/{subscription_id}?notice=replayed", status_code=303
        ),
        delivery_id=delivery_id,
    )
