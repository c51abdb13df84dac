from signup_shared.migrations import run_env
from stats.models import Base

run_env(Base.metadata)
