"""Settings of the tickets service (``TICKETS_*`` plus the common ones)."""

from comptoir_common.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class TicketsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETS_", extra="ignore")

    service_name: str = "tickets"
