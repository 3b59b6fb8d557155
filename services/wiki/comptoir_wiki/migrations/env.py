from comptoir_common.migrations import run_env
from comptoir_wiki.models import Base

run_env(Base.metadata)
