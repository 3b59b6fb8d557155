"""Shared helpers of the web pages (sign-in is in ``account.py``, the ticket pages in ``tickets.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from comptoir_gateway.security import optional_actor

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


def safe_next(next_path: str | None) -> str:
    # Only local paths: an open redirect after sign-in would help phishing.
    if next_path and next_path.startswith("/") and not next_path.startswith("//"):
        return next_path
    return "/"
