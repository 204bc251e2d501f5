#!/usr/bin/env bash
# Build the documentation site (Sphinx, Furo, MyST) from docs/ into docs/_build/html:
#   bash scripts/docs.sh           # build, warnings as errors
#   bash scripts/docs.sh --serve   # build, then serve it on http://127.0.0.1:8001/ until Ctrl-C
# Creates .venv (Python 3.11) if missing and installs the project with its docs extra into it.
# Exits non-zero when the build fails or warns.
set -euo pipefail

cd "$(dirname "$0")/.."

SERVE=0
for arg in "$@"; do
    case $arg in
        --serve) SERVE=1 ;;
        -h | --help)
            sed -n '2,6s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *)
            echo "docs.sh: unknown argument: $arg (usage: bash scripts/docs.sh [--serve])" >&2
            exit 2
            ;;
    esac
done

log() { printf '\n==> %s\n' "$*" >&2; }

if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $(command -v python3.11)"
    python3.11 -m venv .venv
fi

log "installing the project with its docs extra into .venv"
.venv/bin/python -m pip install --quiet -e '.[docs]'

log "building docs/_build/html"
.venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

if [ "$SERVE" = 1 ]; then
    log "serving docs/_build/html on http://127.0.0.1:8001/ (Ctrl-C to stop)"
    exec .venv/bin/python -m http.server 8001 --bind 127.0.0.1 --directory docs/_build/html
fi
