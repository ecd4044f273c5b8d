#!/usr/bin/env bash
# Runs a pipeline that ends in report.html, opens OUT/report.html in headless Chromium with no
# network, and fails on any console error or warning, any chart that failed or drew no marks, a
# missing charting library, or a page that never finished drawing. Keeps a screenshot under
# BUILD/report-screenshots/NAME.png.
# Usage: report_browser.sh CAULK PIPELINE.toml BUILD NAME MIN_CHARTS EXPECTED_EXIT [TEXT...]
#   TEXT: strings the drawn page must contain (e.g. the failed node's error), or
#   "figure-under:NODE:TITLE": a chart whose title starts with TITLE is drawn (with marks) inside NODE's section.
#   CAULK_RUN_FLAGS (environment): more flags for `caulk run` (e.g. --plugin-path DIR, --no-data-check).
set -euo pipefail
caulk=$1 pipeline=$2 build=$3 name=$4 min_charts=$5 expected_exit=$6
shift 6

fail() { echo "FAIL ($name): $*" >&2; exit 1; }

browser=$(command -v chromium || true)
[ -n "$browser" ] || fail "chromium is not installed: scripts/install-deps.sh browser installs it (make test does)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/out"

set +e
# CAULK_RUN_FLAGS: more flags for the run (e.g. --no-data-check for a run that must fail while running).
# shellcheck disable=SC2086
"$caulk" run "$pipeline" --out "$out" --jobs 2 ${CAULK_RUN_FLAGS:-} >"$work/run.out" 2>"$work/run.err"
code=$?
set -e
[ "$code" -eq "$expected_exit" ] || { cat "$work/run.err" >&2; fail "caulk run exited $code, expected $expected_exit"; }
report="$out/report.html"
[ -s "$report" ] || fail "no $report"
# Self-contained: nothing is fetched from elsewhere.
if grep -Eq '(src|href)="(https?:)?//' "$report"; then fail "the report links to a remote resource"; fi

# No network at all: a proxy that does not exist, no name resolution, no background services.
flags=(--headless --no-sandbox --disable-gpu --no-first-run --no-default-browser-check --disable-extensions
       --disable-background-networking --disable-component-update --disable-sync --disable-default-apps
       --proxy-server=127.0.0.1:9 --host-resolver-rules="MAP * ~NOTFOUND" --hide-scrollbars
       --user-data-dir="$work/profile" --virtual-time-budget=30000 --enable-logging=stderr --v=0)

timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$report" >"$work/dom.html" 2>"$work/browser.err" ||
  { tail -20 "$work/browser.err" >&2; fail "chromium --dump-dom failed or timed out"; }

# Console messages Chromium logs itself (the page's own record below catches those too).
if grep -E ':CONSOLE' "$work/browser.err" >"$work/console.txt"; then cat "$work/console.txt" >&2; fail "console messages"; fi

body=$(grep -o '<body data-report-status[^>]*>' "$work/dom.html" | head -1 || true)
[ -n "$body" ] || fail "the drawn page has no report status"
attr() { sed -n "s/.* $1=\"\([^\"]*\)\".*/\1/p" <<<"$body"; }
log=$(sed -n 's/.*<pre id="render-log"[^>]*>\([^<]*\)<\/pre>.*/\1/p' "$work/dom.html" | head -1)
echo "($name) $body"
echo "($name) render log: $log"
[ "$(attr data-report-status)" = done ] || fail "the page did not finish drawing its charts"
[ "$(attr data-chart-library)" = present ] ||
  fail "the report has no charting JavaScript: caulk was built without npm (see docs/report.md)"
charts=$(attr data-charts) drawn=$(attr data-charts-drawn)
[ "$(attr data-console-errors)" = 0 ] || fail "console errors: $log"
[ "$(attr data-console-warnings)" = 0 ] || fail "console warnings: $log"
[ "$(attr data-charts-failed)" = 0 ] || fail "charts failed to render: $log"
[ "$(attr data-charts-empty)" = 0 ] || fail "charts rendered empty: $log"
[ "$charts" -ge "$min_charts" ] || fail "$charts charts, expected at least $min_charts"
[ "$drawn" = "$charts" ] || fail "$drawn of $charts charts drawn"
# Every chart element holds an SVG with marks.
svgs=$(grep -o '<figure class="chart[^>]*data-marks="[1-9][0-9]*"' "$work/dom.html" | wc -l)
[ "$svgs" = "$charts" ] || fail "$svgs of $charts chart figures carry marks"
for text in "$@"; do
  if [[ "$text" == figure-under:* ]]; then
    rest=${text#figure-under:} node=${rest%%:*} title=${rest#*:}
    # The node's section, from its opening tag to the next </section>.
    section=$(awk -v open="<section id=\"node-$node\">" 'index($0, open) {on = 1} on {print} on && /<\/section>/ {exit}' "$work/dom.html")
    [ -n "$section" ] || fail "no section for node $node"
    grep -o '<figure class="chart[^>]*>' <<<"$section" | grep -F "data-title=\"$title" | grep -q 'data-marks="[1-9]' ||
      fail "the chart '$title' is not drawn in node $node's section"
    continue
  fi
  grep -qF -- "$text" "$work/dom.html" || fail "the page does not show: $text"
done

mkdir -p "$build/report-screenshots"
shot="$build/report-screenshots/$name.png"
rm -f "$shot"
timeout 120 "$browser" "${flags[@]}" --window-size=1280,4000 --screenshot="$shot" "file://$report" >/dev/null 2>&1 ||
  fail "chromium --screenshot failed or timed out"
[ -s "$shot" ] || fail "no screenshot"
echo "($name) $charts charts drawn; screenshot $shot"
