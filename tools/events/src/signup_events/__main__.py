"""Allow ``python -m signup_events``."""

import sys

from signup_events.cli import main

sys.exit(main())
