"""Jinja2 pages of the web interface, with the signed-in user and the CSRF token in every template."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from comptoir_gateway.security import CSRF_COOKIE, cookie_secure, new_csrf_token

_PARIS = ZoneInfo("Europe/Paris")
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


def format_datetime(value: str | datetime | None) -> str:
    """``28/11/2026 08:05`` in Paris time, as French users read dates."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(_PARIS).strftime("%d/%m/%Y %H:%M")


templates.env.filters["datetime_fr"] = format_datetime

ROLE_LABELS = {
    "admin": "Superviseur",
    "agent": "Technicien",
    "sales": "Commercial",
    "client": "Client",
    "reseller": "Revendeur",
}
templates.env.globals["ROLE_LABELS"] = ROLE_LABELS


def error_text(exc, default: str = "Demande refusée.") -> str:
    """The French message of an HTTPException raised by a service call."""
    detail = getattr(exc, "detail", None)
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        return detail.get("message") or default
    return default


def render_page(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    csrf_token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    response = templates.TemplateResponse(
        request,
        template,
        {"csrf_token": csrf_token, "actor": getattr(request.state, "actor", None), **(context or {})},
        status_code=status_code,
    )
    if request.cookies.get(CSRF_COOKIE) != csrf_token:
        response.set_cookie(
            CSRF_COOKIE,
            csrf_token,
            httponly=True,
            samesite="strict",
            secure=cookie_secure(request),
            path="/",
        )
    return response
