"""Allow ``python -m signup_dlq``."""

import sys

from signup_dlq.cli import main

sys.exit(main())
