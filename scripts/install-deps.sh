#!/usr/bin/env bash
# Installs the Debian 12 packages caulk needs, skipping those already present.
# Runs `apt-get update` only when something must be installed.
# Usage: scripts/install-deps.sh [core|fuzz|browser|mpi|torch|lint]...   (default: core)
set -euo pipefail

core=(cmake make g++ pkg-config
      libboost-dev libtomlplusplus-dev libeigen3-dev libopenblas-dev liblapacke-dev
      liblbfgspp-dev libcli11-dev nlohmann-json3-dev libfmt-dev libxxhash-dev
      libpng-dev libgtest-dev libgmock-dev libbenchmark-dev
      nodejs npm   # npm installs the report's charting JavaScript at build time (docs/report.md)
      graphviz     # dot draws the pipeline graph in every report, the demo's included
      libtorch-dev   # TorchScript models (libs/models_torch; built only when present)
      # dataset.images decodes and resizes images; ONNX models run on OpenCV's DNN module
      libopencv-core-dev libopencv-imgcodecs-dev libopencv-imgproc-dev libopencv-dnn-dev)
fuzz=(clang-14 libclang-rt-14-dev)
browser=(chromium)  # the report's browser test (headless Chromium)
mpi=(libopenmpi-dev openmpi-bin libboost-mpi-dev)
# PyTorch, to check that caulk's checkpoints run in it and that TorchScript models give PyTorch's
# numbers (tests of make test); scikit-learn's digits images for the TorchScript benchmark.
torch=(python3-torch python3-sklearn)
lint=(clang-format)  # the C++ layout (.clang-format; make format, the test format.clang_format)

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(core)
wanted=()
for g in "${groups[@]}"; do
  case "$g" in
    core) wanted+=("${core[@]}") ;;
    fuzz) wanted+=("${fuzz[@]}") ;;
    browser) wanted+=("${browser[@]}") ;;
    mpi) wanted+=("${mpi[@]}") ;;
    torch) wanted+=("${torch[@]}") ;;
    lint) wanted+=("${lint[@]}") ;;
    *) echo "install-deps: unknown group '$g' (core, fuzz, browser, mpi, torch, lint)" >&2; exit 2 ;;
  esac
done

# A tool already on PATH counts as present whoever installed it (e.g. a Node.js build that
# bundles npm: installing Debian's npm beside it would fight over the same files).
command_of() {
  case "$1" in
    nodejs) echo node ;;
    npm) echo npm ;;
    chromium) echo chromium ;;
    graphviz) echo dot ;;
    *) echo "" ;;
  esac
}

missing=()
for p in "${wanted[@]}"; do
  cmd=$(command_of "$p")
  if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
