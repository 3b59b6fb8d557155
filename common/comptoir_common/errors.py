"""Errors a service raises on purpose; the gateway maps them to HTTP statuses by name.

nameko sends a remote exception as ``{"exc_type", "exc_path", "exc_args", "value"}``; the gateway only needs
``exc_type`` to pick the status, and ``exc_args[1]`` (when present) carries structured details such as the fresh
state of a ticket after a conflicting edit. nameko turns every non-string value inside ``exc_args`` into a string
(``2`` → ``"2"``, ``None`` → ``"None"``), so the details travel as one JSON string, decoded by the RPC client.
"""

from __future__ import annotations

import json
from typing import Any


class ComptoirError(Exception):
    """Base of the errors that are the caller's fault. The message is French: it is shown to people."""

    status_code = 400

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message, json.dumps(details or {}, default=str))
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


class InvalidInput(ComptoirError):
    status_code = 422


class AuthenticationFailed(ComptoirError):
    status_code = 401


class PermissionDenied(ComptoirError):
    status_code = 403


class NotFound(ComptoirError):
    status_code = 404


class Conflict(ComptoirError):
    status_code = 409


class PayloadTooLarge(ComptoirError):
    status_code = 413


class TooManyRequests(ComptoirError):
    status_code = 429


STATUS_BY_ERROR_NAME: dict[str, int] = {
    cls.__name__: cls.status_code
    for cls in (
        ComptoirError,
        InvalidInput,
        AuthenticationFailed,
        PermissionDenied,
        NotFound,
        Conflict,
        PayloadTooLarge,
        TooManyRequests,
    )
}
