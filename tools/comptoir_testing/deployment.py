"""What the deployment files must cover: the services on main (the registry) and the ones announced."""

from __future__ import annotations

from pathlib import Path

from comptoir_dev.registry import SERVICES

REPO = Path(__file__).resolve().parents[2]

# Services being built in parallel (helper brief); their deploy entries exist, disabled until the package lands.
ANNOUNCED = {
    "crm_sync": "comptoir_crm_sync",
    "mail_ingest": "comptoir_mail_ingest",
    "reports": "comptoir_reports",
    "wiki": "comptoir_wiki",
}
ON_MAIN = {info.name: info.package for info in SERVICES}
ALL_SERVICES = ANNOUNCED | ON_MAIN


def env_prefix(name: str) -> str:
    return name.upper().replace("-", "_") + "_"
