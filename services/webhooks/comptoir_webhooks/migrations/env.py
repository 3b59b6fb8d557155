from comptoir_common.migrations import run_env
from comptoir_webhooks.models import Base

run_env(Base.metadata)
