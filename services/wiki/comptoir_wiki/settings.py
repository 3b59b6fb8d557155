"""Settings of the wiki service (``WIKI_*`` plus the common ones)."""

from comptoir_common.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class WikiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WIKI_", extra="ignore")

    service_name: str = "wiki"
    # Largest attachment (or pasted image) accepted on a page.
    max_attachment_bytes: int = 20 * 1024 * 1024
