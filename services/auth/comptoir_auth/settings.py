"""Settings of the auth service (``AUTH_*`` plus the common ones)."""

from comptoir_common.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    service_name: str = "auth"
    health_port: int = 0

    def nameko_config(self) -> dict:
        # Links in account mails (invitation, reset) point at the public web address.
        return super().nameko_config() | {"PUBLIC_URL": self.public_url}
