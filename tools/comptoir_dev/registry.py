"""The processes that make up Comptoir, in start order."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    package: str
    settings_class: str
    service_class: str
    health_port: int

    def settings(self):
        return _load(self.settings_class)()

    def load_service_class(self):
        return _load(self.service_class)

    @property
    def migrations_dir(self) -> Path:
        return Path(importlib.import_module(self.package).__file__).parent / "migrations"

    @property
    def env_prefix(self) -> str:
        return self.name.upper().replace("-", "_") + "_"


def _load(dotted: str):
    module_name, attribute = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), attribute)


def _info(name: str, package: str, class_prefix: str, health_port: int) -> ServiceInfo:
    return ServiceInfo(
        name,
        package,
        f"{package}.settings.{class_prefix}Settings",
        f"{package}.service.{class_prefix}Service",
        health_port,
    )


SERVICES: tuple[ServiceInfo, ...] = (
    _info("auth", "comptoir_auth", "Auth", 9101),
    _info("tickets", "comptoir_tickets", "Tickets", 9102),
    _info("notifier", "comptoir_notifier", "Notifier", 9103),
    _info("crm_sync", "comptoir_crm_sync", "CrmSync", 9104),
    _info("reports", "comptoir_reports", "Reports", 9106),
    _info("wiki", "comptoir_wiki", "Wiki", 9107),
    _info("mail_ingest", "comptoir_mail_ingest", "MailIngest", 9105),
    _info("webhooks", "comptoir_webhooks", "Webhooks", 9108),
)


def migrate_all(services: tuple[ServiceInfo, ...] | list[ServiceInfo] = SERVICES) -> None:
    """Database migrations of each service, then the broker topology (event queues) they consume from."""
    from comptoir_common.migrations import upgrade
    from comptoir_common.nameko_ext import declare_topology
    from comptoir_common.settings import CommonSettings

    for info in services:
        upgrade(info.migrations_dir, info.settings().effective_database_url)
    declare_topology([info.load_service_class() for info in services], CommonSettings().amqp_uri)


def service(name: str) -> ServiceInfo:
    for info in SERVICES:
        if info.name == name:
            return info
    raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in SERVICES)}")
