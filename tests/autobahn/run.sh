#!/usr/bin/env bash
# Run the Autobahn|Testsuite fuzzingclient (the original wstest 25.10.1) against
# a WebSocket echo server and print a one-line summary.
#
#   tests/autobahn/run.sh [options] [WS_URL]        (default ws://127.0.0.1:9001)
#
# To test one of the stages, use run-step.sh, which builds and starts it.
#
# Options:
#   -c CASES   space-separated case patterns (default: "1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.*")
#   -x CASES   space-separated patterns to exclude (default: none)
#   -o DIR     output directory (default: /tmp/autobahn-report; wiped first)
#   -a AGENT   agent name used in the report (default: testee)
#   -t SECS    overall time limit for wstest (default: 1800)
#   -s         strict: exit 1 unless every case is OK/INFORMATIONAL and every close verdict is OK
#   -n CASES   with -s: these cases may be NON-STRICT (space-separated ids, e.g. "6.4.3 6.4.4")
#   -f         skip the pre-flight echo check (run even if one text message does not echo back)
#
# The server must already be listening and must echo every text/binary message.
# Outputs: DIR/reports/index.json (machine-readable, one entry per case),
#          DIR/reports/index.html (Autobahn's HTML report), DIR/wstest.log.
# Exit: 0 no FAILED case, 1 some case FAILED or never ran, 2 harness problem.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cases="1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.*"
exclude=""
out="${AUTOBAHN_OUT:-/tmp/autobahn-report}"
agent="testee"
limit=1800
strict=""
allow_non_strict=""
preflight=1
while getopts "c:x:o:a:t:sn:fh" opt; do
    case "$opt" in
        c) cases="$OPTARG" ;;
        x) exclude="$OPTARG" ;;
        o) out="$OPTARG" ;;
        a) agent="$OPTARG" ;;
        t) limit="$OPTARG" ;;
        s) strict="--strict" ;;
        n) allow_non_strict="$OPTARG" ;;
        f) preflight="" ;;
        h) sed -n '2,23p' "$0"; exit 0 ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
url="${1:-ws://127.0.0.1:9001}"

# 1. wstest: the original one, installed on first use (everything from PyPI),
#    unless AUTOBAHN_WSTEST names another wstest command.
if [[ -n "${AUTOBAHN_WSTEST:-}" ]]; then
    read -r -a wstest <<<"$AUTOBAHN_WSTEST"
else
    venv="$("$here/setup.sh")" || { echo "autobahn: setup failed (see above)"; exit 2; }
    wstest=("$venv/bin/wstest")
fi

# 2. is anything listening?
hostport="${url#*://}"; hostport="${hostport%%/*}"
host="${hostport%:*}"; port="${hostport##*:}"
[[ "$host" == "$port" ]] && port=80
if ! timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    echo "autobahn: nothing is listening on $host:$port (start the echo server first)"
    exit 2
fi
if [[ -n "$preflight" ]] && ! python3 "$here/preflight.py" "$url"; then
    echo "autobahn: not running the suite (use -f to run it anyway)"
    exit 2
fi

# 3. spec
if [[ -e "$out" && ! -e "$out/.autobahn-harness" ]] && [[ -n "$(ls -A "$out" 2>/dev/null)" ]]; then
    echo "autobahn: refusing to wipe $out (not made by this script); pick another -o DIR"
    exit 2
fi
rm -rf "$out"
mkdir -p "$out/reports"
touch "$out/.autobahn-harness"
python3 - "$out/fuzzingclient.json" "$url" "$agent" "$out/reports" "$cases" "$exclude" <<'EOF'
import json, sys
spec_path, url, agent, outdir, cases, exclude = sys.argv[1:]
spec = {
    "options": {},            # wstest's own defaults (failByDrop=false, as in the reference setups)
    "outdir": outdir,
    "servers": [{"agent": agent, "url": url}],
    "cases": cases.split(),
    "exclude-cases": exclude.split(),
    "exclude-agent-cases": {},
}
with open(spec_path, "w") as f:
    json.dump(spec, f, indent=2)
EOF

# 4. run. wstest writes index.json, then one JSON+HTML file per case, then
#    exits. Watchdog: if it is still alive 30 s after index.json appeared (seen
#    with the Python 3 port, which can crash while writing per-case files and
#    then hang), stop it; the summary only needs index.json.
start=$(date +%s)
(cd "$out" && exec timeout --kill-after=10 "$limit" "${wstest[@]}" -m fuzzingclient \
    -s "$out/fuzzingclient.json") >"$out/wstest.log" 2>&1 &
wpid=$!
seen=""
while kill -0 "$wpid" 2>/dev/null; do
    if [[ -s "$out/reports/index.json" ]]; then
        seen="${seen:-$(date +%s)}"
        if (( $(date +%s) - seen > 30 )); then
            echo "autobahn: warning: wstest still running 30s after writing index.json; stopping it"
            kill "$wpid" 2>/dev/null || true
            break
        fi
    fi
    sleep 0.5
done
set +e
wait "$wpid"
rc=$?
set -e
secs=$(( $(date +%s) - start ))

# 5. which cases were requested (wstest prints the expanded list)
python3 - "$out/wstest.log" "$out/expected-cases.json" <<'EOF'
import ast, json, sys
ids = []
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("Cases = "):
        ids = ast.literal_eval(line[len("Cases = "):].strip())
        break
json.dump(ids, open(sys.argv[2], "w"))
EOF

if grep -q "^Connection to .* failed" "$out/wstest.log"; then
    echo "autobahn: warning: wstest could not (re)connect to $url; cases after that point did not run"
fi
if [[ $rc -ne 0 ]]; then
    echo "autobahn: warning: wstest exited with status $rc after ${secs}s (124 = hit the ${limit}s limit); see $out/wstest.log"
fi
if [[ ! -s "$out/reports/index.json" ]]; then
    echo "autobahn: no report written; see $out/wstest.log"
    tail -5 "$out/wstest.log" | sed 's/^/  /'
    exit 2
fi
set +e
python3 "$here/summarize.py" "$out/reports/index.json" --expected "$out/expected-cases.json" \
    --agent "$agent" $strict --allow-non-strict "$allow_non_strict"
status=$?
set -e
echo "report: $out/reports/index.json  (html: $out/reports/index.html; wstest ran ${secs}s)"
exit $status
