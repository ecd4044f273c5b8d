#!/usr/bin/env bash
# Installs caulk into a temporary prefix, builds plugin-template/ out of tree against it with
# find_package(caulk), and runs a pipeline that uses the template's node on the demo hub.
set -euo pipefail
src=$1 build=$2 cxx_flags=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
cmake -S "$src/plugin-template" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_FLAGS="$cxx_flags" >"$work/configure.log"
cmake --build "$work/build" -j 2 >"$work/build.log"

caulk="$work/prefix/bin/caulk"
# The installed CLI finds its bundled plugins with no flag, and the new one with --plugin-path.
# (Captured first: `grep -q` stops reading at the first match, and under pipefail the writer's
# SIGPIPE would fail the test once the node list outgrows a pipe buffer.)
"$caulk" nodes >"$work/nodes.txt"
grep -q "rank.logme" "$work/nodes.txt"
"$caulk" nodes --plugin-path "$work/build" example.nearest_centroid >"$work/template_node.txt"
grep -q "nearest-centroid" "$work/template_node.txt"

cat >"$work/p.toml" <<TOML
[pipeline]
name = "template"
[[node]]
id = "task"
type = "dataset.load"
params = { labels = "$src/pipelines/demo/labels_train.npy" }
[[node]]
id = "hub"
type = "adapter.precomputed"
params = { manifest = "$src/pipelines/demo/hub.toml" }
[[node]]
id = "centroid"
type = "example.nearest_centroid"
inputs = { features = "hub", data = "task" }
[[node]]
id = "ranking"
type = "report.ranking"
inputs = { scores = ["centroid"] }
TOML
"$caulk" run "$work/p.toml" --plugin-path "$work/build" --out "$work/out" --jobs 2 >"$work/stdout" 2>"$work/stderr" || {
  cat "$work/stderr"
  exit 1
}
grep -q '"status": "ok"' "$work/out/run.json"
# The best features of the demo hub win under this ranker too.
grep -Eq "^ +1  sharp-large" "$work/stdout"
echo "template plugin built out of tree and ran"
