from comptoir_common.migrations import run_env
from comptoir_mail_ingest.models import Base

run_env(Base.metadata)
