"""Settings of the reports service (``REPORTS_*`` plus the common ones)."""

from comptoir_common.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class ReportsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTS_", extra="ignore")

    service_name: str = "reports"
    # Events asked from the tickets service per replay call during a rebuild.
    replay_page_size: int = 500

    def nameko_config(self) -> dict:
        return super().nameko_config() | {"REPLAY_PAGE_SIZE": self.replay_page_size}
