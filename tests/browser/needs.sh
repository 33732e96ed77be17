# What every browser runner (run.sh, redis.sh) needs before it starts
# anything: Chromium, Node.js, npm, cargo and playwright-core from npm, and
# a folder for what the run leaves behind. Source it, then:
#
#     browser_needs NAME [TOOL...]   # check the tools, npm ci if needed, set
#                                    # $chromium and $artifacts (for NAME)
#     stop PID                       # end a process we started, and wait for it
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
