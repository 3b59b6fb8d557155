"""``python -m comptoir_wiki``: run the wiki service."""

from pathlib import Path  # noqa: E402

import comptoir_common.green  # noqa: F401  (patches the standard library: keep it first)
from comptoir_common.runner import run_service  # noqa: E402

from comptoir_wiki.service import WikiService  # noqa: E402
from comptoir_wiki.settings import WikiSettings  # noqa: E402

if __name__ == "__main__":
    run_service(WikiService, WikiSettings(), Path(__file__).parent / "migrations")
