"""``python -m comptoir_auth``: run the auth service."""

from pathlib import Path  # noqa: E402

import comptoir_common.green  # noqa: F401  (patches the standard library: keep it first)
from comptoir_common.runner import run_service  # noqa: E402

from comptoir_auth.service import AuthService  # noqa: E402
from comptoir_auth.settings import AuthSettings  # noqa: E402

if __name__ == "__main__":
    run_service(AuthService, AuthSettings(), Path(__file__).parent / "migrations")
