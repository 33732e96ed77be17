# Builds a stage and starts it on a free port of 127.0.0.1: what the browser
# tests (tests/browser/run.sh) and the conformance suite
# (tests/autobahn/run-step.sh) both need. Source it, then:
#
#     start_stage step-04 /tmp/server.log    # build (release), start, wait
#     start_stage step-08 /tmp/server.log --ping-interval 1   # with flags
#     echo "$stage_url"                      # http://127.0.0.1:PORT
#     stop_stage                             # whatever happened
#
# start_stage sets stage_pid, stage_port, stage_address (127.0.0.1:PORT) and
# stage_url. It reads the port from the first line the stage prints,
# "Listening on http://127.0.0.1:PORT" (a whole line only, so never half a
# port number). It returns 1, saying why, if the build fails, or if the
# stage does not print that line within 10 s; the stage's output is then in
# the log. A relative CARGO_TARGET_DIR is taken relative to the caller's
# folder, as cargo takes it.

stage_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stage_pid=""

start_stage() {
    local step="$1" log="$2"
    if [[ -n ${CARGO_TARGET_DIR:-} && $CARGO_TARGET_DIR != /* ]]; then
        export CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
    fi
    echo "==> cargo build --release -p $step"
    if ! (cd "$stage_repo" && cargo build --release --quiet -p "$step"); then
        echo "error: cargo build --release -p $step failed" >&2
        return 1
    fi
    local target
    target="$(cd "$stage_repo" && cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    local binary="$target/release/$step"
    if [[ ! -x $binary ]]; then
        echo "error: no binary at $binary" >&2
        return 1
    fi
    "$binary" 127.0.0.1:0 "${@:3}" >"$log" 2>&1 &
    stage_pid=$!
    local first_line
    for _ in $(seq 100); do # 100 x 0.1 s
        if IFS= read -r first_line <"$log" &&
            [[ $first_line =~ ^Listening\ on\ http://(127\.0\.0\.1:([0-9]+))$ ]]; then
            stage_address="${BASH_REMATCH[1]}"
            stage_port="${BASH_REMATCH[2]}"
            stage_url="http://$stage_address"
            echo "==> $step listens on $stage_url (pid $stage_pid, its log: $log)"
            return 0
        fi
        kill -0 "$stage_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "error: $step did not say where it listens (a first line 'Listening on http://127.0.0.1:PORT'). It printed:" >&2
    sed 's/^/  /' "$log" >&2
    stop_stage
    return 1
}

stop_stage() {
    if [[ -n $stage_pid ]]; then
        kill "$stage_pid" 2>/dev/null || true
        wait "$stage_pid" 2>/dev/null || true
        stage_pid=""
    fi
}
