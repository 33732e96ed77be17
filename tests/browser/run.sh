#!/usr/bin/env bash
# Runs one step's browser tests in a real, headless Chromium:
#
#     tests/browser/run.sh step-02
#
# builds the step's server (cargo build --release -p step-02) and starts it
# on a free port of 127.0.0.1 (with tests/start-stage.sh, as the Autobahn
# runner does), runs lib.test.mjs and step-02.test.mjs against it with
# node --test, and stops the server however the tests end. Works from any
# directory. Exits non-zero if anything fails.
#
# Environment (all optional):
#   CARGO_TARGET_DIR  where cargo builds (default: <repo>/target)
#   CHROMIUM          the browser (default: /usr/bin/chromium)
#   ARTIFACTS_DIR     where the server log and screenshots go (default: a new temporary folder)
set -euo pipefail

step=${1:-}
if [[ ! $step =~ ^step-[0-9][0-9]$ ]]; then
    echo "usage: $0 step-NN    (for example: $0 step-02)" >&2
    exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if [[ ! -f $here/$step.test.mjs ]]; then
    echo "error: no browser tests for $step: $here/$step.test.mjs does not exist" >&2
    exit 2
fi

# --- What the tests need: Chromium, Node.js, and playwright-core ---------------
# shellcheck source=needs.sh
source "$here/needs.sh"
browser_needs "$step"

# --- Build the server, start it, and stop it whatever happens -----------------
server_log=$artifacts/server.log

# shellcheck source=../start-stage.sh
source "$root/tests/start-stage.sh"
tests_pid=
cleanup() {
    [[ -z $tests_pid ]] || stop "$tests_pid"
    tests_pid=
    stop_stage
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# From stage 8 on, a quiet client is pinged after a second, and given up a
# second later: short enough for a test to see several pings go by.
stage_args=()
[[ $step > step-07 ]] && stage_args=(--ping-interval 1 --idle-timeout 1)
start_stage "$step" "$server_log" "${stage_args[@]}" || exit 1
url=$stage_url

# --- Run the tests ---------------------------------------------------------------
export SERVER_URL=$url SERVER_LOG=$server_log SERVER_PID=$stage_pid
run_browser_tests lib.test.mjs "$step.test.mjs"
cleanup
report_and_exit "$server_log"
