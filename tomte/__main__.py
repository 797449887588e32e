"""Entry point for ``python -m tomte``."""

import sys

from tomte.cli import main

sys.exit(main())
