"""Settings from the environment, one pattern for every process.

Common settings (broker, data directory, logging, mail) read unprefixed names such as ``AMQP_URI`` and
``COMPTOIR_DATA_DIR``; a service's own settings read names prefixed with the service, such as
``TICKETS_DATABASE_URL``.
"""

from __future__ import annotations

import os
import secrets
import time
from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class CommonSettings(BaseSettings):
    """Settings every process shares."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    amqp_uri: str = Field("amqp://guest:guest@127.0.0.1:5672/", validation_alias=_alias("AMQP_URI"))
    data_dir: Path = Field(Path("var"), validation_alias=_alias("COMPTOIR_DATA_DIR"))
    log_level: str = Field("INFO", validation_alias=_alias("COMPTOIR_LOG_LEVEL"))
    log_format: str = Field("json", validation_alias=_alias("COMPTOIR_LOG_FORMAT"))
    public_url: str = Field("http://127.0.0.1:8000", validation_alias=_alias("COMPTOIR_PUBLIC_URL"))
    mail_domain: str = Field("comptoir.local", validation_alias=_alias("COMPTOIR_MAIL_DOMAIN"))
    blob_dir: Path | None = Field(None, validation_alias=_alias("COMPTOIR_BLOB_DIR"))
    # How long a starting process waits for the broker (restarting, or slow under load) before giving up.
    broker_wait: float = Field(30.0, validation_alias=_alias("COMPTOIR_BROKER_WAIT"))
    shared_secret_key: str | None = Field(None, validation_alias=_alias("COMPTOIR_SECRET_KEY"))
    # Database connections a service process keeps open when idle (more are opened in a burst, up to twice its
    # pool, and closed once returned). Opening one costs a PostgreSQL backend start: keep enough for the usual load.
    db_idle_connections: int = Field(10, validation_alias=_alias("COMPTOIR_DB_IDLE_CONNECTIONS"))

    @property
    def blob_root(self) -> Path:
        return self.blob_dir or (self.data_dir / "blobs")

    def resolved_secret_key(self) -> str:
        """``COMPTOIR_SECRET_KEY``, or for a local run the random key kept in the data dir (as the gateway does)."""
        if self.shared_secret_key:
            return self.shared_secret_key
        key_file = self.data_dir / "secret_key"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: processes starting together agree on one key (the first writer wins).
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):
                key = key_file.read_text().strip()
                if key:
                    return key
                time.sleep(0.05)
            raise RuntimeError(f"{key_file} is empty") from None
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        return key_file.read_text().strip()


class ServiceSettings(CommonSettings):
    """Settings of one nameko service; subclasses set ``service_name`` and an env prefix.

    ``<SERVICE>_DATABASE_URL`` selects the store (PostgreSQL in tests and production); without it the service
    keeps a SQLite file under the data directory, which is what ``make dev`` uses.
    """

    service_name: str = "service"
    database_url: str | None = None
    max_workers: int = 10
    health_port: int = 0
    rpc_timeout: float = 10.0

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / f'{self.service_name}.db').resolve()}"

    def nameko_config(self) -> dict:
        return {
            "AMQP_URI": self.amqp_uri,
            "max_workers": self.max_workers,
            "parent_calls_tracked": 10,
            "serializer": "json",
            "BLOB_ROOT": str(self.blob_root.resolve()),
            "DB_IDLE_CONNECTIONS": self.db_idle_connections,
        }
