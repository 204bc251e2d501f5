#!/usr/bin/env bash
# The demo: the whole django-pagecall flow on this machine, with nothing else to install.
#   bash scripts/demo.sh            # run the flow once, unattended; exit 0 when every step happened
#   bash scripts/demo.sh --serve    # run the site at http://127.0.0.1:8000/ until Ctrl-C
# Extra arguments go to the example site's `manage.py pagecall_demo` (see --help). It starts the
# bundled Pagecall emulator and a Celery worker process, serves the site (Pagecall's webhooks come
# to it), creates a room with two members, plays a join and a leave, and prints the session.
# No server needed: SQLite (example_project/db.sqlite3) and kombu's filesystem broker
# (example_project/.broker/); Redis instead when REDIS_URL is set. Users: admin, alice and bob,
# each one's password is their name. Creates .venv (Python 3.11) if missing and installs the
# project into it.
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

extras=""
if [ -n "${REDIS_URL:-}" ]; then
    extras="[redis]" # the Redis client, for the broker REDIS_URL names
fi
log "installing django-pagecall$extras into .venv"
"$PY" -m pip install --quiet -e ".$extras"

log "manage.py pagecall_demo $* (migrates the example site's database first)"
exec env PYTHONUNBUFFERED=1 "$PY" example_project/manage.py pagecall_demo "$@"
