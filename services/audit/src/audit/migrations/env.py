from audit.models import Base
from signup_shared.migrations import run_env

run_env(Base.metadata)
