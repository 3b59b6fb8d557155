"""``python -m comptoir_webhooks``: run the webhooks service."""

from pathlib import Path  # noqa: E402

import comptoir_common.green  # noqa: F401  (patches the standard library: keep it first)
from comptoir_common.runner import run_service  # noqa: E402

from comptoir_webhooks.service import WebhooksService  # noqa: E402
from comptoir_webhooks.settings import WebhooksSettings  # noqa: E402

if __name__ == "__main__":
    run_service(WebhooksService, WebhooksSettings(), Path(__file__).parent / "migrations")
