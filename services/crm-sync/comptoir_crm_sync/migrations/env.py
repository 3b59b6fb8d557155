from comptoir_common.migrations import run_env
from comptoir_crm_sync.models import Base

run_env(Base.metadata)
