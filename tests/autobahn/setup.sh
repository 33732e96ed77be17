#!/usr/bin/env bash
# Install the original Autobahn|Testsuite (wstest 25.10.1, Python 2.7) into a
# private virtualenv. Everything comes from PyPI; the only other prerequisite
# is a CPython 2.7 interpreter (this machine image ships one under pyenv).
#
#   tests/autobahn/setup.sh            # idempotent; prints the venv path
#
# Environment:
#   AUTOBAHN_VENV  where the virtualenv goes
#                  (default: ${XDG_CACHE_HOME:-$HOME/.cache}/autobahn-testsuite/venv-py27)
#   AUTOBAHN_PY27  the Python 2.7 interpreter to use (default: found via pyenv / PATH)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/autobahn-testsuite"
venv="${AUTOBAHN_VENV:-$cache/venv-py27}"

find_py27() {
    if [[ -n "${AUTOBAHN_PY27:-}" ]]; then echo "$AUTOBAHN_PY27"; return; fi
    local c
    for c in \
        "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/2.7.18/bin/python2.7" \
        "$HOME"/.pyenv/versions/2.7*/bin/python2.7 \
        "$(command -v python2.7 || true)" \
        "$(command -v pypy || true)"; do
        if [[ -n "$c" && -x "$c" ]] && "$c" -c 'import sys, ssl; assert sys.version_info[:2] == (2, 7)' 2>/dev/null; then
            echo "$c"; return
        fi
    done
    return 1
}

if [[ -x "$venv/bin/wstest" ]] && "$venv/bin/wstest" -a 2>/dev/null | grep -q 'AutobahnTestSuite 25.10.1'; then
    echo "$venv"
    exit 0
fi

py27="$(find_py27)" || {
    echo "setup.sh: no Python 2.7 interpreter with ssl found (tried pyenv 2.7.18, python2.7, pypy)." >&2
    echo "  Set AUTOBAHN_PY27=/path/to/python2.7 (the suite is Python 2 only)." >&2
    exit 2
}
echo "setup.sh: using $py27 ($("$py27" -V 2>&1))" >&2

# virtualenv 20.15.1 is the last release that still runs on Python 2.7. It goes
# into a private --target directory, and its app-data cache into $cache, so that
# the interpreter's site-packages and ~/.local stay untouched.
boot="$cache/bootstrap-py27"
if ! PYTHONNOUSERSITE=1 PYTHONPATH="$boot" "$py27" -c 'import virtualenv' 2>/dev/null; then
    "$py27" -m pip install --disable-pip-version-check -q --target "$boot" 'virtualenv==20.15.1' 2>&1 \
        | grep -v 'DEPRECATION: Python 2.7' >&2 || true
    PYTHONNOUSERSITE=1 PYTHONPATH="$boot" "$py27" -c 'import virtualenv' || {
        echo "setup.sh: could not install virtualenv for $py27" >&2
        exit 2
    }
fi
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
VIRTUALENV_OVERRIDE_APP_DATA="$cache/virtualenv-app-data" PYTHONPATH="$boot" "$py27" -m virtualenv -q "$venv"
"$venv/bin/pip" install --disable-pip-version-check -q -r "$here/requirements-py27.txt" 2>&1 \
    | grep -v -i 'DEPRECATION: Python 2.7' >&2 || true
"$venv/bin/wstest" -a | grep -q 'AutobahnTestSuite 25.10.1' || {
    echo "setup.sh: wstest did not install correctly in $venv" >&2
    exit 2
}
echo "$venv"
