"""``python -m comptoir_mail_ingest``: run the mail-ingest service."""

from pathlib import Path  # noqa: E402

import comptoir_common.green  # noqa: F401  (patches the standard library: keep it first)
from comptoir_common.runner import run_service  # noqa: E402

from comptoir_mail_ingest.service import MailIngestService  # noqa: E402
from comptoir_mail_ingest.settings import MailIngestSettings  # noqa: E402

if __name__ == "__main__":
    run_service(MailIngestService, MailIngestSettings(), Path(__file__).parent / "migrations")
