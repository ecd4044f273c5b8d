#!/usr/bin/env bash
# The C++ sources follow .clang-format (`make format` applies it): lists every file that does not.
set -euo pipefail
cd "$(dirname "$0")/.."
formatter=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$formatter" ]; then
  echo "check_format: clang-format is not installed (scripts/install-deps.sh lint, which make test runs)" >&2
  exit 1
fi
mapfile -t files < <(find framework libs plugins plugin-template tests bench fuzz -name '*.cpp' -o -name '*.hpp' -o -name '*.h' | sort)
# One clang-format process for every file (one per file cost a minute of the suite); each
# violation is reported as FILE:LINE:COL: error: ...
status=0
report=$("$formatter" --dry-run -Werror "${files[@]}" 2>&1 >/dev/null) || status=$?
mapfile -t bad < <(printf '%s\n' "$report" | grep -oE '^[^:[:space:]]+:[0-9]+:[0-9]+: error' | cut -d: -f1 | sort -u)
if [ "$status" -ne 0 ] && [ ${#bad[@]} -eq 0 ]; then
  echo "check_format: clang-format failed: $report" >&2
  exit 1
fi
if [ ${#bad[@]} -gt 0 ]; then
  echo "check_format: ${#bad[@]} of ${#files[@]} files are not formatted as .clang-format says (run make format):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files formatted"
