"""Who may manage webhooks: administrators only (the payloads carry staff data such as internal notes)."""

from __future__ import annotations

from comptoir_common.errors import PermissionDenied


def require_admin(actor: dict | None) -> None:
    if not actor or actor.get("role") != "admin" or not actor.get("id"):
        raise PermissionDenied("Réservé aux administrateurs.")
