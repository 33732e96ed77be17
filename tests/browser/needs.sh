# What every browser runner (run.sh, redis.sh) needs before it starts
# anything: Chromium, Node.js, npm, cargo and playwright-core from npm, and
# a folder for what the run leaves behind. Source it, then:
#
#     browser_needs NAME [TOOL...]   # check the tools, npm ci if needed, set
#                                    # $chromium and $artifacts (for NAME)
#     stop PID                       # end a process we started, and wait for it
#     run_browser_tests FILE...      # node --test FILE... (with the environment
#                                    # the caller exported), status in $status
#     report_and_exit LOG...         # what went wrong (the LOGs), or "passed"
#
# It exits with a message saying what to install if something is missing.

browser_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

browser_needs() {
    local name="$1"
    shift
    chromium=${CHROMIUM:-/usr/bin/chromium}
    if [[ ! -x $chromium ]]; then
        echo "error: Chromium not found at $chromium." >&2
        echo "       On Debian or Ubuntu, as root: apt-get update && apt-get install -y chromium" >&2
        echo "       (or point CHROMIUM at another Chromium or Chrome)" >&2
        exit 1
    fi
    local tool
    for tool in node npm cargo "$@"; do
        if ! command -v "$tool" >/dev/null; then
            echo "error: $tool not found (these browser tests need Node.js 20 or later, npm, cargo${*:+ and $*})" >&2
            exit 1
        fi
    done
    # npm ci whenever node_modules is missing or older than the lock file.
    if [[ ! -f $browser_here/node_modules/.package-lock.json ||
        $browser_here/package-lock.json -nt $browser_here/node_modules/.package-lock.json ]]; then
        echo "==> npm ci (in $browser_here)"
        (cd "$browser_here" && npm ci --no-audit --no-fund)
    fi
    artifacts=${ARTIFACTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ws-browser-$name.XXXXXX")}
    [[ $artifacts == /* ]] || artifacts=$PWD/$artifacts
    mkdir -p "$artifacts"
}

stop() {
    [[ -n ${1:-} ]] || return 0
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# Each test has its own time limit; `timeout` is the last resort if something
# (a browser that will not close, say) hangs anyway. On a timeout, or when we
# stop it, it ends npm, node and Chromium together. The tests run in the
# background so that Ctrl-C is handled at once (`wait` returns on a signal):
# the caller's trap can stop them through $tests_pid.
run_browser_tests() {
    (
        cd "$browser_here"
        export ARTIFACTS_DIR=$artifacts CHROMIUM=$chromium
        exec timeout --kill-after=10 180 npm test --silent -- "$@"
    ) &
    tests_pid=$!
    status=0
    wait "$tests_pid" || status=$?
    tests_pid=
}

report_and_exit() {
    if [[ $status -ne 0 ]]; then
        [[ $status -eq 124 ]] && echo "error: the browser tests took longer than 180 s and were stopped" >&2
        echo "==> FAILED ($status). What the servers printed:" >&2
        local log
        for log in "$@"; do
            echo "--- $log" >&2
            cat "$log" >&2
        done
    else
        echo "==> passed"
    fi
    echo "==> logs and screenshots: $artifacts"
    exit "$status"
}
