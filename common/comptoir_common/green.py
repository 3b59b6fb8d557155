"""Import first in every service process: eventlet must patch the standard library before anything else loads."""

import warnings

# eventlet warns on import that it is in bug-fix mode; docs/architecture.md records that decision.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"comptoir_.*")
warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()
