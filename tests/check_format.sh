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
bad=()
for f in "${files[@]}"; do
  "$formatter" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check_format: ${#bad[@]} of ${#files[@]} files are not formatted as .clang-format says (run make format):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files formatted"
