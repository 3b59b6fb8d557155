"""The nameko face of the auth service: entrypoints only, the logic is in :mod:`comptoir_auth.users`."""

from __future__ import annotations

from comptoir_common.nameko_ext import Database, rpc

from comptoir_auth import users
from comptoir_auth.models import OutboxMessage, ProcessedEvent


class AuthService:
    name = "auth"

    db = Database(outbox_model=OutboxMessage, inbox_model=ProcessedEvent)

    @rpc
    def login(self, email: str, password: str) -> dict:
        """Check a password; returns the user or raises ``AuthenticationFailed``."""
        return users.user_to_dict(users.authenticate(self.db.session, email=email, password=password))

    @rpc
    def get_user(self, user_id: str) -> dict:
        return users.user_to_dict(users.get_user(self.db.session, user_id))
