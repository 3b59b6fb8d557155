"""The French web interface: sign-in and sign-out (the ticket pages are in :mod:`comptoir_gateway.web.tickets`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import SESSION_COOKIE, csrf_valid, issue_token, optional_actor
from comptoir_gateway.web.rendering import render_page

router = APIRouter(include_in_schema=False)

CSRF_MESSAGE = "Votre formulaire a expiré. Rechargez la page et réessayez."


class LoginRequired(Exception):
    """Raised by pages that need a signed-in user; answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str):
        self.next_path = next_path


def require_actor(request: Request) -> dict[str, Any]:
    actor = optional_actor(request)
    if actor is None:
        raise LoginRequired(request.url.path)
    request.state.actor = actor
    return actor


def _safe_next(next_path: str | None) -> str:
    # Only local paths: an open redirect after sign-in would help phishing.
    if next_path and next_path.startswith("/") and not next_path.startswith("//"):
        return next_path
    return "/"


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    if optional_actor(request):
        return RedirectResponse(_safe_next(next), status_code=303)
    return render_page(request, "login.html", {"next": _safe_next(next)})


@router.post("/login")
async def login_submit(
    request: Request,
    services: ServicesDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    context = {"email": email, "next": _safe_next(next)}
    if not csrf_valid(request, csrf_token):
        return render_page(request, "login.html", context | {"error": CSRF_MESSAGE}, status_code=400)
    try:
        user = await services.call("auth", "login", email=email, password=password)
    except HTTPException as exc:
        message = exc.detail if isinstance(exc.detail, str) else "Connexion impossible."
        return render_page(request, "login.html", context | {"error": message}, status_code=exc.status_code)
    settings = request.app.state.settings
    lifetime = timedelta(hours=settings.web_session_hours)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        issue_token(user, settings.signing_key, lifetime, kind="web"),
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    response = RedirectResponse("/login", status_code=303)
    if csrf_valid(request, csrf_token):
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response
