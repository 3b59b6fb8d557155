"""Shared helpers of the web pages (sign-in is in ``account.py``, the ticket pages in ``tickets.py``)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Collection
from typing import Any, NoReturn

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel
from starlette.responses import Response

from comptoir_gateway.security import csrf_valid, optional_actor
from comptoir_gateway.web.rendering import error_text

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


class PostedForm(BaseModel):
    """The fields of a page's form, read with ``Annotated[Model, Form()]``; every one carries the CSRF token.

    Fields the model does not declare are ignored (pydantic's default), as with one ``Form()`` parameter each.
    """

    csrf_token: str = ""

    def values(self) -> dict[str, Any]:
        """The submitted fields without the token: what the form shows again."""
        return self.model_dump(exclude={"csrf_token"})


ErrorPage = Callable[[str, int], Response | Awaitable[Response]]


async def submit_form(
    request: Request,
    csrf_token: str | None,
    action: Callable[[], Awaitable[Any]],
    *,
    on_error: ErrorPage,
    on_success: Callable[[Any], Response | Awaitable[Response]],
    propagate: Collection[int] = (),
    refused: str = "Demande refusée.",
) -> Response:
    """The one shape of a form post: CSRF check, the service call, then where the form leads.

    When the service refuses the caller's input (4xx), ``on_error(message, status)`` shows the form again with the
    French message (``refused`` when the service gave none). Server errors, and the statuses in ``propagate`` (say 403/404 on a page the caller may not
    see), go to the application's error pages instead.
    """
    if not csrf_valid(request, csrf_token):
        return await _page(on_error(CSRF_MESSAGE, 400))
    try:
        result = await action()
    except HTTPException as exc:
        if exc.status_code >= 500 or exc.status_code in propagate:
            raise
        return await _page(on_error(error_text(exc, refused), exc.status_code))
    return await _page(on_success(result))


def error_page(message: str, status: int) -> NoReturn:
    """``on_error`` of a lone button whose page is not shown again: the application's error page with the refusal."""
    raise HTTPException(status, message)


async def _page(page: Response | Awaitable[Response]) -> Response:
    return await page if inspect.isawaitable(page) else page
