"""The benchmark's modules import each other by bare name (``bench.py`` runs as a script from
this folder), so its unit tests need the folder on ``sys.path`` too."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
