"""Settings of the notifier service (``NOTIFIER_*``, ``SMTP_URL`` and the common ones)."""

from comptoir_common.settings import ServiceSettings
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict


class NotifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    service_name: str = "notifier"
    # smtp://user:password@host:port, smtps:// for implicit TLS, smtp+starttls:// for STARTTLS.
    smtp_url: str = Field(
        "smtp://127.0.0.1:2525", validation_alias=AliasChoices("SMTP_URL", "NOTIFIER_SMTP_URL")
    )
    from_address: str = "Support Comptoir <support@comptoir.local>"
    support_address: str = "support@comptoir.local"
    smtp_timeout: float = 20.0
    max_attempts: int = 12
    # Folder of templates that override the packaged ones, file by file (admins adjust wording there).
    templates_dir: str | None = None
    # Automatic answers (acknowledgements) per recipient and hour, even when loop detection fails.
    ack_limit_per_hour: int = 5

    def nameko_config(self) -> dict:
        return super().nameko_config() | {
            "SMTP_URL": self.smtp_url,
            "FROM_ADDRESS": self.from_address,
            "SUPPORT_ADDRESS": self.support_address,
            "PUBLIC_URL": self.public_url,
            "MAIL_DOMAIN": self.mail_domain,
            "SMTP_TIMEOUT": self.smtp_timeout,
            "MAX_ATTEMPTS": self.max_attempts,
            "TEMPLATES_DIR": self.templates_dir or "",
            "ACK_LIMIT_PER_HOUR": self.ack_limit_per_hour,
            "THREAD_SECRET": self.resolved_secret_key(),
        }
