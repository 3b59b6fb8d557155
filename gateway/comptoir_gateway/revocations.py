"""What this gateway refuses at once: revoked sessions and deactivated users, learnt from auth's events.

Tokens are checked locally (no call to auth per request), so a sign-out everywhere or a deactivation must reach
every gateway instance as it happens: each instance subscribes to auth's events on a queue of its own, and at start
loads the current state by RPC (``auth.get_revocations``) so that a restarted gateway is not fooled by tokens
revoked while it was down. Until that state is loaded, signed requests are answered 503.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from comptoir_common.rpc_client import RpcClient, RpcError
from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

REVOCATION_EVENTS = ["user.deactivated", "user.reactivated", "session.revoked", "user.sessions_revoked"]
REVOKED_SESSIONS = Gauge(
    "comptoir_gateway_revoked_sessions", "Revoked, unexpired sessions known to this gateway"
)
REFUSED_TOKENS = Counter("comptoir_gateway_refused_tokens_total", "Signed tokens refused", ["reason"])


def _parse(moment: str | None) -> datetime:
    if not moment:
        return datetime.max.replace(tzinfo=UTC)
    return datetime.fromisoformat(moment)


class Revocations:
    def __init__(self) -> None:
        self.inactive_users: set[str] = set()
        self.revoked_sessions: dict[str, datetime] = {}
        self.loaded = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self.loaded.is_set()

    def refusal(self, claims: dict[str, Any]) -> str | None:
        """Why a (validly signed) token must be refused now, or None."""
        sid = claims.get("sid")
        if not sid:
            reason = "no_session"
        elif sid in self.revoked_sessions:
            reason = "session_revoked"
        elif claims.get("sub") in self.inactive_users:
            reason = "user_inactive"
        else:
            return None
        REFUSED_TOKENS.labels(reason).inc()
        return reason

    def apply_state(self, state: dict[str, Any]) -> None:
        self.inactive_users |= set(state.get("inactive_user_ids") or [])
        for item in state.get("revoked_sessions") or []:
            self.revoked_sessions[item["id"]] = _parse(item.get("expires_at"))
        self.prune()

    async def on_event(self, envelope: dict[str, Any]) -> None:
        kind, data = envelope.get("type"), envelope.get("data") or {}
        if kind == "user.deactivated":
            self.inactive_users.add(data["id"])
        elif kind == "user.reactivated":
            self.inactive_users.discard(data["id"])
        elif kind == "session.revoked":
            self.revoked_sessions[data["session_id"]] = _parse(data.get("expires_at"))
        elif kind == "user.sessions_revoked":
            for item in data.get("sessions") or []:
                self.revoked_sessions[item["id"]] = _parse(item.get("expires_at"))
        if len(self.revoked_sessions) % 1000 == 0:
            self.prune()
        REVOKED_SESSIONS.set(len(self.revoked_sessions))

    def prune(self) -> None:
        """Forget revoked sessions that have expired anyway (their tokens are refused by their expiry)."""
        now = datetime.now(UTC)
        for sid in [sid for sid, expires in self.revoked_sessions.items() if expires <= now]:
            del self.revoked_sessions[sid]
        REVOKED_SESSIONS.set(len(self.revoked_sessions))

    async def start(self, client: RpcClient) -> None:
        """Subscribe first (so nothing falls between the two), then load the current state, retrying until auth answers."""
        await client.subscribe("auth", REVOCATION_EVENTS, self.on_event)
        delay = 0.2
        while True:
            try:
                self.apply_state(await client.call("auth", "get_revocations", timeout=5))
                break
            except RpcError as exc:
                log.warning("revocation state not loaded yet (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.loaded.set()
        log.info(
            "revocation state loaded",
            extra={
                "inactive_users": len(self.inactive_users),
                "revoked_sessions": len(self.revoked_sessions),
            },
        )

    async def prune_forever(self, interval: float = 600.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.prune()
