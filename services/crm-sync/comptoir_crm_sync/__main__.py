"""``python -m comptoir_crm_sync``: run the crm_sync service."""

from pathlib import Path  # noqa: E402

import comptoir_common.green  # noqa: F401  (patches the standard library: keep it first)
from comptoir_common.runner import run_service  # noqa: E402

from comptoir_crm_sync.service import CrmSyncService  # noqa: E402
from comptoir_crm_sync.settings import CrmSyncSettings  # noqa: E402

if __name__ == "__main__":
    run_service(CrmSyncService, CrmSyncSettings(), Path(__file__).parent / "migrations")
