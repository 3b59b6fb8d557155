from comptoir_common.migrations import run_env
from comptoir_tickets.models import Base

run_env(Base.metadata)
