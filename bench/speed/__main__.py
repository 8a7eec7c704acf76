"""`python -m bench.speed` (from the repository root)."""

import sys

from bench.speed.run import main

sys.exit(main())
