"""The peer's process environment and its log line."""

from __future__ import annotations

import os
import sys
import time

# Set before mem0 / transformers are imported: MEM0_TELEMETRY off, else posthog calls and a ~7 s wait at exit
# on a closed network; the Hugging Face libraries offline.
OFFLINE_ENV = {"MEM0_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def apply() -> None:
    """Put the offline settings into this process's environment (and so its children's)."""
    os.environ.update(OFFLINE_ENV)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def log(msg: str) -> None:
    print(f"[mem0-peer {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
