"""Admin pages (French): users, pending sign-up requests, audit log, security settings and locks.

Each page calls the auth service with the caller's identity; the service refuses anyone but an admin.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import client_info
from comptoir_gateway.web.rendering import render_page
from comptoir_gateway.web.routes import ErrorPage, PostedForm, require_actor, submit_form

log = logging.getLogger(__name__)
router = APIRouter(prefix="/admin", include_in_schema=False)

PAGE_SIZE = 50
NOTICES = {
    "created": "Le compte est créé ; une invitation a été envoyée par e-mail.",
    "saved": "Les modifications sont enregistrées.",
    "deactivated": "Le compte est désactivé ; ses sessions sont fermées.",
    "reactivated": "Le compte est réactivé.",
    "invited": "Une nouvelle invitation a été envoyée.",
    "sessions": "Toutes les sessions de ce compte sont fermées.",
    "devices": "Les navigateurs de confiance de ce compte sont révoqués.",
    "approved": "La demande est acceptée ; le compte est créé et l'invitation envoyée.",
    "rejected": "La demande est refusée.",
    "unlocked": "Le blocage est levé.",
    "policy": "La règle est enregistrée.",
}


def _bool_filter(value: str | None) -> bool | None:
    return {"1": True, "0": False}.get(value or "")


@router.get("/utilisateurs")
async def users_page(
    request: Request,
    services: ServicesDep,
    q: str = "",
    role: str = "",
    active: str = "",
    customer_id: str = "",
    page: int = 1,
) -> Response:
    actor = require_actor(request)
    page = max(1, page)
    result = await services.call(
        "auth",
        "list_users",
        actor=actor,
        q=q or None,
        role=role or None,
        active=_bool_filter(active),
        customer_id=customer_id or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    filters = {"q": q, "role": role, "active": active, "customer_id": customer_id}
    query = urlencode({k: v for k, v in filters.items() if v})
    return render_page(
        request,
        "admin/users.html",
        {
            "result": result,
            "filters": filters,
            "page": page,
            "pages": max(1, -(-result["total"] // PAGE_SIZE)),
            "query": query,
        },
    )


class UserForm(PostedForm):
    """The admin's user form (new and edit)."""

    email: str = ""
    name: str = ""
    phone: str = ""
    role: str = "client"
    customer_id: str = ""
    language: str = "fr"


def _user_fields(form: UserForm) -> dict[str, Any]:
    """The user's fields for the auth service, from the form."""
    return {
        "email": form.email.strip(),
        "name": form.name.strip(),
        "phone": form.phone.strip() or None,
        "role": form.role,
        "customer_id": form.customer_id.strip() or None,
        "language": form.language or "fr",
    }


@router.get("/utilisateurs/nouveau")
async def new_user_page(request: Request) -> Response:
    require_actor(request)
    return render_page(
        request, "admin/user_form.html", {"form": {"role": "client", "language": "fr"}, "user": None}
    )


@router.post("/utilisateurs/nouveau")
async def new_user_submit(
    request: Request, services: ServicesDep, form: Annotated[UserForm, Form()]
) -> Response:
    actor = require_actor(request)
    fields = _user_fields(form)
    return await submit_form(
        request,
        form.csrf_token,
        lambda: services.call("auth", "create_user", actor=actor, fields=fields, client=client_info(request)),
        on_error=lambda message, status: render_page(
            request, "admin/user_form.html", {"form": fields, "error": message}, status_code=status
        ),
        on_success=lambda user: RedirectResponse(
            f"/admin/utilisateurs/{user['id']}?notice=created", status_code=303
        ),
        propagate=(403,),
    )


async def _user_page(request: Request, services, actor: dict, user_id: str, **extra: Any) -> Response:
    user = await services.call("auth", "get_user", actor=actor, user_id=user_id)
    audit = await services.call("auth", "list_audit", actor=actor, user_id=user_id, limit=20)
    status_code = extra.pop("status_code", 200)
    return render_page(
        request,
        "admin/user_form.html",
        {"user": user, "form": extra.pop("form", None) or user, "audit": audit["items"], **extra},
        status_code=status_code,
    )


@router.get("/utilisateurs/{user_id}")
async def user_page(user_id: str, request: Request, services: ServicesDep, notice: str = "") -> Response:
    actor = require_actor(request)
    return await _user_page(request, services, actor, user_id, notice=NOTICES.get(notice))


@router.post("/utilisateurs/{user_id}")
async def user_submit(
    user_id: str, request: Request, services: ServicesDep, form: Annotated[UserForm, Form()]
) -> Response:
    actor = require_actor(request)
    fields = _user_fields(form)
    return await submit_form(
        request,
        form.csrf_token,
        lambda: services.call(
            "auth", "update_user", actor=actor, user_id=user_id, changes=fields, client=client_info(request)
        ),
        on_error=lambda message, status: _user_page(
            request, services, actor, user_id, form=fields, error=message, status_code=status
        ),
        on_success=lambda _: RedirectResponse(f"/admin/utilisateurs/{user_id}?notice=saved", status_code=303),
        propagate=(403, 404),
    )


USER_ACTIONS = {
    "desactiver": ("deactivate_user", "deactivated"),
    "reactiver": ("reactivate_user", "reactivated"),
    "invitation": ("resend_invitation", "invited"),
    "sessions": ("revoke_user_sessions", "sessions"),
    "navigateurs": ("revoke_trusted_devices", "devices"),
}


@router.post("/utilisateurs/{user_id}/{action}")
async def user_action(
    user_id: str,
    action: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    actor = require_actor(request)
    if action not in USER_ACTIONS:
        raise HTTPException(404, "Action inconnue.")
    method, notice = USER_ACTIONS[action]
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("auth", method, actor=actor, user_id=user_id, client=client_info(request)),
        on_error=lambda message, status: _user_page(
            request, services, actor, user_id, error=message, status_code=status
        ),
        on_success=lambda _: RedirectResponse(
            f"/admin/utilisateurs/{user_id}?notice={notice}", status_code=303
        ),
        propagate=(403, 404),
    )


# --- sign-up requests ---------------------------------------------------------------------------------------


@router.get("/demandes")
async def signups_page(
    request: Request, services: ServicesDep, status: str = "pending", notice: str = ""
) -> Response:
    actor = require_actor(request)
    requests_ = await services.call("auth", "list_signups", actor=actor, status=status or None)
    return render_page(
        request,
        "admin/signups.html",
        {"requests": requests_, "status": status, "notice": NOTICES.get(notice)},
    )


async def suggest_customer(request: Request, email: str) -> dict[str, Any]:
    """The customer of a known contact with this address, from crm_sync; a note instead when it cannot answer."""
    client = request.app.state.rpc_client
    timeout = request.app.state.settings.crm_lookup_timeout
    try:
        found = await client.call("crm_sync", "find_by_email", email, timeout=timeout)
    except Exception as exc:  # crm_sync not running (or too slow): approval still works, by hand
        log.info("customer suggestion unavailable: %s", exc)
        return {
            "available": False,
            "note": "Suggestion indisponible : l'annuaire des clients ne répond pas. "
            "Saisissez la société à la main.",
        }
    if not found:
        return {
            "available": True,
            "customer": None,
            "note": "Cette adresse n'est celle d'aucun contact connu.",
        }
    return {"available": True, "customer": found.get("customer"), "contact": found.get("contact")}


async def _signup_page(request: Request, services, actor: dict, request_id: str, **extra: Any) -> Response:
    signup = await services.call("auth", "get_signup", actor=actor, request_id=request_id)
    suggestion = await suggest_customer(request, signup["email"]) if signup["status"] == "pending" else None
    status_code = extra.pop("status_code", 200)
    return render_page(
        request,
        "admin/signup.html",
        {"signup": signup, "suggestion": suggestion, **extra},
        status_code=status_code,
    )


@router.get("/demandes/{request_id}")
async def signup_page(request_id: str, request: Request, services: ServicesDep) -> Response:
    return await _signup_page(request, services, require_actor(request), request_id)


async def _decide_signup(
    request: Request,
    services: ServicesDep,
    request_id: str,
    csrf_token: str,
    method: str,
    notice: str,
    **choice,
) -> Response:
    """Approve or reject a sign-up request; a refusal re-renders the request page with the French reason."""
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "auth", method, actor=actor, request_id=request_id, client=client_info(request), **choice
        ),
        on_error=lambda message, status: _signup_page(
            request, services, actor, request_id, error=message, status_code=status
        ),
        on_success=lambda _: RedirectResponse(f"/admin/demandes?notice={notice}", status_code=303),
        propagate=(403, 404),
    )


@router.post("/demandes/{request_id}/accepter")
async def signup_approve(
    request_id: str,
    request: Request,
    services: ServicesDep,
    customer_id: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "client",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    return await _decide_signup(
        request,
        services,
        request_id,
        csrf_token,
        "approve_signup",
        "approved",
        customer_id=customer_id,
        role=role,
    )


@router.post("/demandes/{request_id}/refuser")
async def signup_reject(
    request_id: str,
    request: Request,
    services: ServicesDep,
    note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    return await _decide_signup(
        request, services, request_id, csrf_token, "reject_signup", "rejected", note=note
    )


# --- audit log and security ---------------------------------------------------------------------------------


@router.get("/journal")
async def audit_page(
    request: Request, services: ServicesDep, q: str = "", kind: str = "", page: int = 1
) -> Response:
    actor = require_actor(request)
    page = max(1, page)
    result = await services.call(
        "auth",
        "list_audit",
        actor=actor,
        q=q or None,
        kind=kind or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    query = urlencode({k: v for k, v in {"q": q, "kind": kind}.items() if v})
    return render_page(
        request,
        "admin/audit.html",
        {
            "result": result,
            "filters": {"q": q, "kind": kind},
            "page": page,
            "pages": max(1, -(-result["total"] // PAGE_SIZE)),
            "query": query,
        },
    )


async def _security_page(request: Request, services, actor: dict, **extra: Any) -> Response:
    policies = await services.call("auth", "get_role_policies", actor=actor)
    locks = await services.call("auth", "list_locks", actor=actor)
    status_code = extra.pop("status_code", 200)
    return render_page(
        request,
        "admin/security.html",
        {"policies": policies, "locks": locks, **extra},
        status_code=status_code,
    )


@router.get("/securite")
async def security_page(request: Request, services: ServicesDep, notice: str = "") -> Response:
    return await _security_page(request, services, require_actor(request), notice=NOTICES.get(notice))


def _security_refusal(request: Request, services, actor: dict) -> ErrorPage:
    """The security page again with the refusal of a form posted from it."""
    return lambda message, status: _security_page(request, services, actor, error=message, status_code=status)


@router.post("/securite/roles/{role}")
async def security_role(
    role: str,
    request: Request,
    services: ServicesDep,
    two_factor_required: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "auth",
            "set_role_policy",
            actor=actor,
            role=role,
            two_factor_required=two_factor_required == "1",
            client=client_info(request),
        ),
        on_error=_security_refusal(request, services, actor),
        on_success=lambda _: RedirectResponse("/admin/securite?notice=policy", status_code=303),
        propagate=(403, 404),
    )


@router.post("/securite/deverrouiller")
async def security_unlock(
    request: Request,
    services: ServicesDep,
    key: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("auth", "clear_lock", actor=actor, key=key, client=client_info(request)),
        on_error=_security_refusal(request, services, actor),
        on_success=lambda _: RedirectResponse("/admin/securite?notice=unlocked", status_code=303),
        propagate=(403, 404),
    )
