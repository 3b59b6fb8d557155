"""Who may do what in the auth service: managing accounts is for admins only."""

from __future__ import annotations

from typing import Any

from comptoir_common.errors import AuthenticationFailed, PermissionDenied

ADMIN_ONLY_MESSAGE = "Cette action est réservée aux superviseurs."


def require_actor(actor: dict[str, Any] | None) -> dict[str, Any]:
    if not actor or not actor.get("id"):
        raise AuthenticationFailed("Authentification requise.")
    return actor


def require_admin(actor: dict[str, Any] | None) -> dict[str, Any]:
    """The caller, if an admin; otherwise :class:`PermissionDenied` (checked on every admin path)."""
    actor = require_actor(actor)
    if actor.get("role") != "admin":
        raise PermissionDenied(ADMIN_ONLY_MESSAGE)
    return actor
