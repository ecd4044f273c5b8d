#!/usr/bin/env bash
# Builds plugin-template/ out of tree with find_package(caulk), as a new plugin author would, and
# runs a pipeline that uses the template's node on the demo hub. MODE is
#   build-tree  against the caulk build folder itself, no install (-DCMAKE_PREFIX_PATH=<build>), with
#               no build type given: the plugin must come out optimised;
#   installed   against a fresh `cmake --install` of that build.
# Sanitizer flags need no help: the caulk::caulk target carries them. MPIEXEC (optional) is the
# mpirun caulk was built with: the template's node, distributable by its run_unit alone, then also
# runs under `mpirun -np 2` with the same scores.
set -euo pipefail
src=$1 build=$2 mode=$3 mpiexec=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

configure=(cmake -S "$src/plugin-template" -B "$work/plugin" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
case "$mode" in
  build-tree)
    caulk="$build/bin/caulk"
    "${configure[@]}" -DCMAKE_PREFIX_PATH="$build" >"$work/configure.log"
    # caulk_DIR works too (configure only).
    cmake -S "$src/plugin-template" -B "$work/plugin-by-dir" -Dcaulk_DIR="$build" >"$work/configure-by-dir.log"
    ;;
  installed)
    caulk="$work/prefix/bin/caulk"
    cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
    "${configure[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log"
    ;;
  *)
    echo "usage: $0 SOURCE_DIR BUILD_DIR build-tree|installed" >&2
    exit 2
    ;;
esac
cmake --build "$work/plugin" -j 2 >"$work/build.log"

# Optimised by default: the package made Release the build type, and the compiler was told -O3.
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$work/plugin/CMakeCache.txt" || {
  echo "the template's default build type is not Release:" >&2
  grep CMAKE_BUILD_TYPE "$work/plugin/CMakeCache.txt" >&2
  exit 1
}
grep '"command"' "$work/plugin/compile_commands.json" | grep 'example.cpp' | grep -q -- ' -O3 ' || {
  echo "example.cpp was not compiled with -O3:" >&2
  cat "$work/plugin/compile_commands.json" >&2
  exit 1
}

# The CLI finds its bundled plugins with no flag, and the new one with --plugin-path.
# (Captured first: `grep -q` stops reading at the first match, and under pipefail the writer's
# SIGPIPE would fail the test once the node list outgrows a pipe buffer.)
"$caulk" nodes >"$work/nodes.txt"
grep -q "rank.logme" "$work/nodes.txt"
"$caulk" nodes --plugin-path "$work/plugin" example.nearest_centroid >"$work/template_node.txt"
grep -q "nearest-centroid" "$work/template_node.txt"

# The pipeline names its plugin itself (relative to the pipeline file) in the build tree; the
# installed caulk gets it with --plugin-path.
plugins_line='plugins = ["plugin/example.so"]'
plugin_flag=()
if [[ "$mode" == installed ]]; then
  plugins_line=''
  plugin_flag=(--plugin-path "$work/plugin")
fi
cat >"$work/p.toml" <<TOML
[pipeline]
name = "template"
$plugins_line
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
(cd / && "$caulk" run "$work/p.toml" "${plugin_flag[@]}" --out "$work/out" --jobs 2 >"$work/stdout" 2>"$work/stderr") || {
  cat "$work/stderr"
  exit 1
}
grep -q '"status": "ok"' "$work/out/run.json"
# The best features of the demo hub win under this ranker too.
grep -Eq "^ +1  sharp-large" "$work/stdout"
# The engine read the plugin's build record and found nothing to warn about (it would for -O0).
if grep -q "warning" "$work/stderr"; then
  cat "$work/stderr"
  exit 1
fi

# Under mpirun: both ranks load the plugin the pipeline names, every model's unit runs once on some
# rank, and the scores are those of the single process.
if [[ -n "$mpiexec" && "$mode" == build-tree ]]; then
  root=()
  [[ $(id -u) == 0 ]] && root=(--allow-run-as-root)
  (cd / && env -u CAULK_PLUGIN_PATH "$mpiexec" "${root[@]}" --oversubscribe --bind-to none --mca btl self,tcp \
     --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo --mca pml ob1 -np 2 \
     "$caulk" run "$work/p.toml" --out "$work/out-mpi" --jobs 1 >"$work/stdout-mpi" 2>"$work/stderr-mpi") || {
    cat "$work/stderr-mpi"
    exit 1
  }
  /usr/bin/python3 - "$work/out/run.json" "$work/out-mpi/run.json" <<'PY'
import json, sys
one, two = (json.load(open(f)) for f in sys.argv[1:3])
scores = one["nodes"]["centroid"]["summary"]["scores"]
assert two["nodes"]["centroid"]["summary"]["scores"] == scores, (scores, two["nodes"]["centroid"]["summary"])
ranks = two["ranks"]
assert ranks["processes"] == 2, ranks
# The template's units and those of nothing else: its node is the only distributable one here.
assert sum(ranks["units"]) == len(scores), (ranks, len(scores))
print("under mpirun -np 2: the same", len(scores), "scores; units per rank", ranks["units"])
PY
fi
echo "template plugin built out of tree ($mode) and ran"
