#!/usr/bin/env bash
# Makes benchmarks/peers/.venv (git-ignored): agy_jupyter (editable, from this repo) beside its peers
# chatlab and jupyter-ai-magics, pinned to the versions the side-by-side table was measured with.
# Needs only the package registry. Re-running reuses the venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# The widget bundles are already built (or not needed by the benchmark): skip the npm build hook.
SKIP_JUPYTER_BUILDER=1 "$venv/bin/python" -m pip install -q -e "$repo"
# jupyter-ai-magics' "openai-chat" provider comes from langchain-openai; jupyter_client starts the kernels.
"$venv/bin/python" -m pip install -q \
    "chatlab==2.1.1" \
    "jupyter-ai-magics==2.31.7" \
    "langchain-openai" \
    "jupyter_client>=8" \
    "httpx"
"$venv/bin/python" -m pip check || echo "setup_venv: pip check reports conflicts (above); the benchmark may still run"
"$venv/bin/python" - <<'PY'
from importlib.metadata import version
for name in ("agy_jupyter", "chatlab", "jupyter-ai-magics", "langchain-openai", "openai", "ipykernel"):
    print(f"{name} {version(name)}")
PY
