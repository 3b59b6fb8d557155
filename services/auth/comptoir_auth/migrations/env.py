from comptoir_auth.models import Base
from comptoir_common.migrations import run_env

run_env(Base.metadata)
