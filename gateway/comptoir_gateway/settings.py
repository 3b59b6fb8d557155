"""Settings of the gateway (``GATEWAY_*``, ``COMPTOIR_PORT``, ``COMPTOIR_SECRET_KEY`` and the common ones)."""

from __future__ import annotations

import secrets
from functools import cached_property

from comptoir_common.settings import CommonSettings
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict


class GatewaySettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, validation_alias=AliasChoices("COMPTOIR_PORT", "GATEWAY_PORT"))
    # Signs session cookies and API tokens. Required in production; a local run keeps a random one in the data dir.
    secret_key: str | None = Field(
        None, validation_alias=AliasChoices("COMPTOIR_SECRET_KEY", "GATEWAY_SECRET_KEY")
    )
    # API bearer tokens are short-lived; POST /api/v1/auth/refresh renews them while the session is open.
    access_token_minutes: int = 15
    web_session_hours: int = 12
    rpc_timeout: float = 10.0
    secure_cookies: bool = False
    # Behind a reverse proxy, take the caller's address from X-Forwarded-For (only if the proxy sets it).
    trust_forwarded_for: bool = False
    # Sign-up approval suggests the customer of a known contact (crm_sync); a short wait when it is not running.
    crm_lookup_timeout: float = 2.0

    @cached_property
    def signing_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()
