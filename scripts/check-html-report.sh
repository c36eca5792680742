#!/usr/bin/env bash
# Renders the HTML run reports of the seed benchmark and of the main job (scale 0.01) in real
# headless Chromium and fails when a page writes to the console (errors, uncaught exceptions),
# its own check (data-report-ready="ok") is missing, a section is missing, the screenshot is not
# written, or the main job's report lacks the work of its lazy plans (attributed bars, executed
# plans, top operators: checked in the DOM, not in pixels).
#
#   scripts/check-html-report.sh [OUT_DIR]
#
# Installs Debian's `chromium` package when it is missing (needs root and apt). Leaves
# report.html, trace.json, report.json, tpch-out/ (the job's results and reports) and, per
# report, <name>-dom.html, <name>-console.log and <name>-screenshot.png in OUT_DIR (default: a
# fresh temporary directory, printed at the end).
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

# Renders `$1` (a report in $out) in Chromium, leaving `$2`-dom.html, `$2`-console.log and
# `$2`-screenshot.png beside it, and checks what every report must have. Sets status=1 on a
# failure.
status=0
check_report() {
    local page="$1" name="$2"
    "${chrome[@]}" --dump-dom "file://$page" >"$out/$name-dom.html" 2>"$out/$name-console.log"
    "${chrome[@]}" --window-size=1280,1600 --hide-scrollbars --screenshot="$out/$name-screenshot.png" \
        "file://$page" >/dev/null 2>>"$out/$name-console.log"
    if [ -n "$(console_lines "$out/$name-console.log")" ]; then
        echo "$name: the report wrote to the console:" >&2
        console_lines "$out/$name-console.log" >&2
        status=1
    fi
    if ! grep -q 'data-report-ready="ok"' "$out/$name-dom.html"; then
        echo "$name: the page's own check did not pass (data-report-ready is not ok)" >&2
        grep -o 'data-report-ready="[^"]*"' "$out/$name-dom.html" >&2 || echo "(no data-report-ready attribute: the script did not run)" >&2
        status=1
    fi
    for id in gantt graph phases memory; do
        if ! grep -q "id=\"$id\"" "$out/$name-dom.html"; then
            echo "$name: the rendered page has no #$id" >&2
            status=1
        fi
    done
    if [ ! -s "$out/$name-screenshot.png" ]; then
        echo "$name: no screenshot written" >&2
        status=1
    fi
    # A report must not reach the network: no http(s) URL may appear in a src or href.
    if grep -Eo '(src|href)="https?:' "$page" >/dev/null; then
        echo "$name: the report loads something from the network" >&2
        status=1
    fi
}

check_report "$out/report.html" seed

# The main job's report (scale 0.01, a debug build): the work of its lazy plans must be drawn
# under the threads that ran it, and each query factory's executed plan listed.
(cd "$root" && cargo run --quiet -p setl-tpch -- --scale 0.01 --threads 2 --data "$out/tpch-data" \
    --out "$out/tpch-out" >/dev/null)
check_report "$out/tpch-out/report.html" tpch
bars="$(grep -o '<g class="attributed" data-factory="[^"]*"' "$out/tpch-dom.html" | sort -u | wc -l)"
if [ "$bars" -lt 7 ]; then
    echo "tpch: attributed work drawn for $bars factories, expected the 3 shared readers and 6 queries at least" >&2
    status=1
fi
for query in Q1 Q3 Q5 Q6 Q10 Q12; do
    if ! grep -q "<details class=\"plans\"><summary><b>$query</b>" "$out/tpch-dom.html"; then
        echo "tpch: no executed plan listed for $query" >&2
        status=1
    fi
done
if ! grep -q 'id="top-operators"' "$out/tpch-dom.html"; then
    echo "tpch: no table of the top operators" >&2
    status=1
fi

if [ "$status" -eq 0 ]; then
    echo "ok: $out/report.html and $out/tpch-out/report.html render without console errors, the job's with its attributed work; screenshots $out/seed-screenshot.png, $out/tpch-screenshot.png"
fi
exit "$status"
