"""`python -m bench.mem0_peer` (from the repository root, with the peer's own virtualenv)."""

import sys

from bench.mem0_peer.cli import main

sys.exit(main())
