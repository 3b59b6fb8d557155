"""``python -m comptoir_reports``: run the reports service."""

from pathlib import Path  # noqa: E402

import comptoir_common.green  # noqa: F401  (patches the standard library: keep it first)
from comptoir_common.runner import run_service  # noqa: E402

from comptoir_reports.service import ReportsService  # noqa: E402
from comptoir_reports.settings import ReportsSettings  # noqa: E402

if __name__ == "__main__":
    run_service(ReportsService, ReportsSettings(), Path(__file__).parent / "migrations")
