#!/usr/bin/env bash
# The committed demo hub is exactly what the generator writes.
set -euo pipefail
src=$1 generator=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$generator" "$work/demo" >/dev/null
diff -r "$work/demo" "$src/pipelines/demo"
echo "demo hub reproduced byte for byte"
