"""Settings of the webhooks service (``WEBHOOKS_*`` and the common ones)."""

from comptoir_common.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class WebhooksSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_", extra="ignore")

    service_name: str = "webhooks"
    # Plain http:// targets (never in production: the payload and its signature would travel in clear).
    allow_http: bool = False
    # Targets on loopback, private (RFC 1918, fc00::/7), link-local or other non-public addresses: refused unless
    # set, so that an admin account cannot be used to probe the internal network (SSRF).
    allow_private_targets: bool = False
    # Seconds to connect and to read the answer of one delivery.
    timeout: float = 10.0
    # Retries on 5xx, 408, 429, timeouts and connection errors: first after first_retry_seconds, doubling, capped
    # at max_retry_seconds; given up after max_attempts attempts or max_age_hours after the event, whichever first.
    first_retry_seconds: float = 10.0
    max_retry_seconds: float = 3600.0
    max_attempts: int = 15
    max_age_hours: float = 48.0
    # After a rotation the previous secret keeps signing (a second signature) this long.
    secret_overlap_hours: float = 24.0
    # Deliveries tried per pass (one pass a second) and process, and how many are sent at once (each holds a
    # database connection during its request: keep it well under MAX_WORKERS).
    batch: int = 50
    concurrency: int = 4
    # Delivered and failed deliveries older than this are removed from the log (hourly); 0 keeps them for ever.
    retention_days: float = 30.0

    def nameko_config(self) -> dict:
        return super().nameko_config() | {
            "WEBHOOKS": {
                "allow_http": self.allow_http,
                "allow_private_targets": self.allow_private_targets,
                "timeout": self.timeout,
                "first_retry_seconds": self.first_retry_seconds,
                "max_retry_seconds": self.max_retry_seconds,
                "max_attempts": self.max_attempts,
                "max_age_hours": self.max_age_hours,
                "secret_overlap_hours": self.secret_overlap_hours,
                "batch": self.batch,
                "concurrency": self.concurrency,
                "retention_days": self.retention_days,
            }
        }
