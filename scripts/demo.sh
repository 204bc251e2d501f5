#!/usr/bin/env bash
# The demo: starts the bundled Pagecall emulator, then runs the example site's `pagecall_demo`
# command against it (a room's round trip through the app's client).
#   bash scripts/demo.sh            # extra arguments go to pagecall_demo
# Creates .venv (Python 3.11) if missing and installs the project into it. No database server
# needed: the example site uses SQLite (example_project/db.sqlite3).
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

if [ ! -x .venv/bin/python ]; then
    python=python3.11
    if command -v pyenv >/dev/null 2>&1 && prefix=$(pyenv prefix 3.11 2>/dev/null); then
        python="$prefix/bin/python3.11"
    fi
    log "creating .venv with $python"
    "$python" -m venv .venv
fi
PY=.venv/bin/python

log "installing django-pagecall into .venv"
"$PY" -m pip install --quiet -e .

MANAGE=(env PYTHONUNBUFFERED=1 "$PY" example_project/manage.py)

log "migrating the example site's SQLite database"
"${MANAGE[@]}" migrate --noinput --verbosity 0

export PAGECALL_API_KEY=demo-api-key
EMULATOR_OUT=$(mktemp)
log "starting the emulator (python -m django_pagecall.emulator)"
# --port 0: a free port; the emulator prints "... listening on http://HOST:PORT/v1" when ready.
"$PY" -u -m django_pagecall.emulator --host 127.0.0.1 --port 0 --api-key "$PAGECALL_API_KEY" \
    >"$EMULATOR_OUT" &
EMULATOR_PID=$!
trap 'kill "$EMULATOR_PID" 2>/dev/null || true; wait "$EMULATOR_PID" 2>/dev/null || true; rm -f "$EMULATOR_OUT"' EXIT

PAGECALL_API_URL=
for _ in $(seq 1 100); do
    if line=$(grep -m 1 'listening on' "$EMULATOR_OUT"); then
        PAGECALL_API_URL=${line##* }
        break
    fi
    if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [ -z "$PAGECALL_API_URL" ]; then
    echo "demo.sh: the emulator did not start:" >&2
    cat "$EMULATOR_OUT" >&2
    exit 1
fi
export PAGECALL_API_URL

log "pagecall_demo (PAGECALL API_URL=$PAGECALL_API_URL)"
"${MANAGE[@]}" pagecall_demo "$@"
