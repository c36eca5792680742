#!/usr/bin/env bash
# Renders the HTML run report of the seed benchmark in real headless Chromium and fails when
# the page writes to the console (errors, uncaught exceptions), its own check
# (data-report-ready="ok") is missing, a section is missing, or the screenshot is not written.
#
#   scripts/check-html-report.sh [OUT_DIR]
#
# Installs Debian's `chromium` package when it is missing (needs root and apt). Leaves
# report.html, trace.json, report.json, dom.html, console.log and screenshot.png in OUT_DIR
# (default: a fresh temporary directory, printed at the end).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (Debian package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi

(cd "$root" && cargo run --quiet --example seed_benchmark -- --no-progress \
    --report "$out/report.html" --trace "$out/trace.json" --json "$out/report.json" >/dev/null)

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chrome=(chromium --headless --no-sandbox --disable-gpu --disable-background-networking
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile"
    --enable-logging=stderr --v=0 --virtual-time-budget=3000)

# Console messages of a page: Chromium logs every console call and uncaught exception of the
# page as a `:CONSOLE` line on stderr (console.error too, at INFO level). The report's script
# writes nothing to the console when all is well, so any such line is a failure.
console_lines() {
    grep -E ':CONSOLE|Uncaught' "$1" || true
}

# Control: a page with a console error and an uncaught exception must be caught, so this check
# cannot pass silently if Chromium's logging changes.
cat >"$out/control.html" <<'HTML'
<!DOCTYPE html><html><body><script>console.error("control error"); notDefined();</script></body></html>
HTML
"${chrome[@]}" --dump-dom "file://$out/control.html" >/dev/null 2>"$out/control.log"
if [ "$(console_lines "$out/control.log" | wc -l)" -lt 2 ]; then
    echo "the console check does not see a control page's errors; Chromium's log format changed?" >&2
    exit 1
fi

# The DOM after the page's script ran, with the console on stderr.
"${chrome[@]}" --dump-dom "file://$out/report.html" >"$out/dom.html" 2>"$out/console.log"
"${chrome[@]}" --window-size=1280,1600 --hide-scrollbars --screenshot="$out/screenshot.png" \
    "file://$out/report.html" >/dev/null 2>>"$out/console.log"

status=0
if [ -n "$(console_lines "$out/console.log")" ]; then
    echo "the report wrote to the console:" >&2
    console_lines "$out/console.log" >&2
    status=1
fi
if ! grep -q 'data-report-ready="ok"' "$out/dom.html"; then
    echo "the page's own check did not pass (data-report-ready is not ok)" >&2
    grep -o 'data-report-ready="[^"]*"' "$out/dom.html" >&2 || echo "(no data-report-ready attribute: the script did not run)" >&2
    status=1
fi
for id in gantt graph phases memory; do
    if ! grep -q "id=\"$id\"" "$out/dom.html"; then
        echo "the rendered page has no #$id" >&2
        status=1
    fi
done
if [ ! -s "$out/screenshot.png" ]; then
    echo "no screenshot written" >&2
    status=1
fi
# A report must not reach the network: no http(s) URL may appear in a src or href.
if grep -Eo '(src|href)="https?:' "$out/report.html" >/dev/null; then
    echo "the report loads something from the network" >&2
    status=1
fi

if [ "$status" -eq 0 ]; then
    echo "ok: $out/report.html renders without console errors; screenshot $out/screenshot.png"
fi
exit "$status"
