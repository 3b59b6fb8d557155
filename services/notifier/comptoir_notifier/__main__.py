"""``python -m comptoir_notifier``: run the notifier service."""

from pathlib import Path  # noqa: E402

import comptoir_common.green  # noqa: F401  (patches the standard library: keep it first)
from comptoir_common.runner import run_service  # noqa: E402

from comptoir_notifier.service import NotifierService  # noqa: E402
from comptoir_notifier.settings import NotifierSettings  # noqa: E402

if __name__ == "__main__":
    run_service(NotifierService, NotifierSettings(), Path(__file__).parent / "migrations")
