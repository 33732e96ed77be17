#!/usr/bin/env bash
# Runs stage 9's browser test in a real, headless Chromium: one chat over two
# servers joined by Redis.
#
#     tests/browser/redis.sh
#
# starts a redis-server of its own on a free port of 127.0.0.1 (nothing
# saved to disk), builds step-09 (cargo build --release -p step-09) and
# starts it twice with --redis (with tests/start-stage.sh, as run.sh does),
# runs step-09-redis.test.mjs against the two with node --test, and stops
# the servers and Redis however the tests end. Works from any directory.
# Exits non-zero if anything fails.
#
# Needs what run.sh needs (Node.js 20 or later, npm, cargo, Chromium), and
# redis-server on the PATH: on Debian or Ubuntu, apt-get install redis-server.
#
# Environment (all optional):
#   CARGO_TARGET_DIR  where cargo builds (default: <repo>/target)
#   CHROMIUM          the browser (default: /usr/bin/chromium)
#   ARTIFACTS_DIR     where the logs and screenshots go (default: a new temporary folder)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# --- What the tests need ---------------------------------------------------------
# shellcheck source=needs.sh
source "$here/needs.sh"
browser_needs step-09-redis redis-server

redis_log=$artifacts/redis.log
log_a=$artifacts/server-a.log
log_b=$artifacts/server-b.log

# shellcheck source=../start-stage.sh
source "$root/tests/start-stage.sh"
redis_pid= pid_a= pid_b= tests_pid=
cleanup() {
    stop "$tests_pid"
    stop "$pid_a"
    stop "$pid_b"
    stop "$redis_pid"
    tests_pid= pid_a= pid_b= redis_pid=
    stop_stage
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Redis, on a port nobody uses ----------------------------------------------
# Whether something answers PING on 127.0.0.1:$1 (bash's /dev/tcp: no redis-cli needed).
answers_ping() {
    local reply
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf '*1\r\n$4\r\nPING\r\n' >&3
    IFS= read -r -t 1 reply <&3 || reply=
    exec 3>&-
    [[ $reply == +PONG* ]]
}
redis_port=
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
        exec 3>&-
        continue # taken
    fi
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$redis_log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 50); do # 50 x 0.1 s
        answers_ping "$port" && break
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.1
    done
    if answers_ping "$port"; then
        redis_port=$port
        break
    fi
    stop "$redis_pid"
    redis_pid=
done
if [[ -z $redis_port ]]; then
    echo "error: redis-server did not start. It printed:" >&2
    sed 's/^/  /' "$redis_log" >&2
    exit 1
fi
echo "==> redis-server listens on 127.0.0.1:$redis_port (pid $redis_pid)"

# --- Two servers, one chat -------------------------------------------------------
start_stage step-09 "$log_a" --redis "127.0.0.1:$redis_port" || exit 1
pid_a=$stage_pid url_a=$stage_url stage_pid=
start_stage step-09 "$log_b" --redis "127.0.0.1:$redis_port" || exit 1
pid_b=$stage_pid url_b=$stage_url stage_pid=
# A join before a server has subscribed is refused: wait for both.
for log in "$log_a" "$log_b"; do
    for _ in $(seq 50); do # 50 x 0.1 s
        grep -q "the chat crosses servers" "$log" && break
        sleep 0.1
    done
    if ! grep -q "the chat crosses servers" "$log"; then
        echo "error: a server did not subscribe to Redis within 5 s. It printed:" >&2
        sed 's/^/  /' "$log" >&2
        exit 1
    fi
done

export SERVER_URL=$url_a SERVER_LOG=$log_a SERVER_URL_B=$url_b SERVER_LOG_B=$log_b
export REDIS_PID=$redis_pid
run_browser_tests step-09-redis.test.mjs
cleanup
report_and_exit "$log_a" "$log_b"
