"""``python -m comptoir_tickets``: run the tickets service."""

from pathlib import Path  # noqa: E402

import comptoir_common.green  # noqa: F401  (patches the standard library: keep it first)
from comptoir_common.runner import run_service  # noqa: E402

from comptoir_tickets.service import TicketsService  # noqa: E402
from comptoir_tickets.settings import TicketsSettings  # noqa: E402

if __name__ == "__main__":
    run_service(TicketsService, TicketsSettings(), Path(__file__).parent / "migrations")
