#!/usr/bin/env bash
# Writes checkpoints with caulk, then runs them in PyTorch (Debian's python3-torch) as
# docs/models.md says, and compares features and probabilities.
# Usage: run.sh SOURCE_DIR CAULK_BINARY SCRATCH_DIR
set -euo pipefail
src=$1 caulk=$2 scratch=$3
rm -rf "$scratch" && mkdir -p "$scratch"
# Debian's interpreter, where python3-torch is installed (another python3 may come first on PATH).
python=/usr/bin/python3
if ! "$python" -c "import torch" 2>/dev/null; then
  echo "python3-torch is not installed: run scripts/install-deps.sh torch (make test does)" >&2
  exit 1
fi
"$caulk" run "$src/tests/pytorch/checkpoints.toml" --out "$scratch" --jobs 2 >"$scratch/caulk.log" 2>&1 \
  || { cat "$scratch/caulk.log" >&2; exit 1; }
"$python" "$src/tests/pytorch/load_in_pytorch.py" "$scratch"
