#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for FUZZ_SECONDS.
# Usage: scripts/fuzz.sh [TARGET...]   (default: every target; FUZZ_SECONDS=60, FUZZ_BUILD=build-fuzz)
# Each target starts from its committed seeds (fuzz/corpus/TARGET) and the corpus it grew in earlier
# runs (FUZZ_BUILD/corpus/TARGET); crashes go to FUZZ_BUILD/crashes/TARGET/ and are listed at the
# end with the command that reproduces them. Every run appends a line to FUZZ_BUILD/fuzz-log.tsv
# (date, target, seconds, runs, edges, corpus size, crashes), the figures docs/reliability.md sums.
# Inputs go up to 1 MB (-max_len): a file that overflows a recursive parser is tens of kilobytes
# (a dotted key 35,000 levels deep is 70 KB), far past libFuzzer's default of 4 KB.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
jobs=${JOBS:-$(nproc)}

scripts/install-deps.sh core fuzz
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAULK_FUZZ=ON \
  -DCAULK_BUILD_TESTS=OFF -DCAULK_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target fuzzers

dict_for() {
  case "$1" in
    fuzz_npy) echo fuzz/dict/npy.dict ;;
    fuzz_safetensors | fuzz_safetensors_index) echo fuzz/dict/safetensors.dict ;;
    fuzz_pipeline | fuzz_manifest) echo fuzz/dict/toml.dict ;;
    fuzz_csv) echo fuzz/dict/csv.dict ;;
    fuzz_onnx_graph) echo fuzz/dict/onnx.dict ;;
  esac
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_npy fuzz_safetensors fuzz_safetensors_index fuzz_pipeline fuzz_manifest fuzz_csv fuzz_onnx_graph)
log="$build/fuzz-log.tsv"
[ -f "$log" ] || printf 'date\ttarget\tseconds\truns\tedges\tcorpus\tcrashes\n' >"$log"
found=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  crashes="$build/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  echo "== $t: ${seconds} s"
  out="$build/$t.out"
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 "$build/bin/$t" "$corpus" "fuzz/corpus/$t" \
    -dict="$(dict_for "$t")" -max_total_time="$seconds" -artifact_prefix="$crashes/" -max_len=1048576 \
    -rss_limit_mb=4096 -print_final_stats=1 >"$out" 2>&1
  status=$?
  set -e
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$out" | grep -oE '[0-9]+$' || echo 0)
  edges=$(grep -oE 'cov: [0-9]+' "$out" | tail -1 | grep -oE '[0-9]+' || echo 0)
  size=$(find "$corpus" -type f | wc -l)
  # libFuzzer's slow-unit-* files are inputs that took long once (often a starved CPU), not
  # failures: they are counted apart and rerun below, so a real slowness shows as a timeout-* file.
  n=$(find "$crashes" -type f ! -name 'slow-unit-*' | wc -l)
  slow=$(find "$crashes" -type f -name 'slow-unit-*' | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$seconds" "$runs" "$edges" "$size" "$n" >>"$log"
  echo "   runs $runs, edges $edges, corpus $size, findings $n, slow units $slow (exit $status; log $out)"
  if [ "$slow" -gt 0 ]; then
    for f in "$crashes"/slow-unit-*; do
      start=$(date +%s%N)
      "$build/bin/$t" "$f" >/dev/null 2>&1 || { echo "   slow unit fails when rerun: $f"; found=1; }
      echo "   slow unit reruns in $(( ($(date +%s%N) - start) / 1000000 )) ms: $f"
    done
  fi
  if [ "$status" -ne 0 ] || [ "$n" -gt 0 ]; then
    found=1
    for f in "$crashes"/*; do
      case "$f" in */slow-unit-*) continue ;; esac
      [ -f "$f" ] && echo "   reproduce: $build/bin/$t $f"
    done
  fi
done
[ "$found" -eq 0 ] || { echo "fuzz: findings above" >&2; exit 1; }
echo "fuzz: no findings"
