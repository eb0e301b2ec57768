#!/usr/bin/env bash
# Installs FineFace UI into .venv (reused if it exists). `--dev` adds the test tools.
# insightface depends on the CPU build of ONNX Runtime, which silently overwrites the GPU build
# when both are installed; where CUDA is used we swap it for onnxruntime-gpu so exactly one remains.
set -euo pipefail
cd "$(dirname "$0")"
requirements=requirements.txt
[ "${1:-}" = "--dev" ] && requirements=requirements-dev.txt
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r "$requirements"
# The project itself, editable: `fineface-ui` and `import fineface_ui` then work from any folder.
.venv/bin/python -m pip install --quiet --no-deps -e .
if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] && command -v nvidia-smi >/dev/null 2>&1; then
  # Uninstall first: both wheels own the same onnxruntime/ folder.
  .venv/bin/python -m pip uninstall --quiet --yes onnxruntime
  .venv/bin/python -m pip install --quiet --force-reinstall --no-deps "onnxruntime-gpu>=1.20"
fi
echo "FineFace UI installed in .venv"
