#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh machine:
#   bash scripts/test.sh                 # every nox session (lint, typecheck, tests on PostgreSQL,
#                                        # MariaDB and SQLite, docs, release), in two lanes
#   bash scripts/test.sh -s tests-3.11   # extra arguments go to nox
#   bash scripts/test.sh --fresh -s lint # --fresh (or FRESH=1) recreates .venv first
# Makes sure PostgreSQL, MariaDB and Redis are up, installs the Debian packages it needs (as
# root, non-interactive), creates .venv (Python 3.11) with nox and uv, puts the Python 3.11 and
# 3.13 interpreters on PATH, then runs nox. Exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

FRESH=${FRESH:-0}
NOX_ARGS=()
for arg in "$@"; do
    case $arg in
        --fresh) FRESH=1 ;;
        *) NOX_ARGS+=("$arg") ;;
    esac
done

log() { printf '\n==> %s\n' "$*" >&2; }

# The real interpreter directories, ahead of pyenv's shims (a shim for a version that is not
# the selected one fails instead of running it, and nox or uv would take the shim).
python_bin_dir() {
    local version=$1 prefix
    if command -v pyenv >/dev/null 2>&1 && prefix=$(pyenv prefix "$version" 2>/dev/null); then
        echo "$prefix/bin"
        return 0
    fi
    local exe
    if exe=$(command -v "python$version") && "$exe" -c 'pass' 2>/dev/null; then
        dirname "$exe"
        return 0
    fi
    return 1
}

for version in 3.13 3.11; do
    if dir=$(python_bin_dir "$version"); then
        PATH="$dir:$PATH"
    else
        echo "test.sh: Python $version not found (pyenv or python$version on PATH); its sessions will fail." >&2
    fi
done
export PATH
# uv must use the interpreters above and never try to download one (no network but PyPI).
export UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system

log "services"
bash scripts/services.sh

# Debian packages the sessions need, installed when missing (apt-get update once, first):
# chromium for the browser tests (tests/test_browser.py; under CI they fail without it), and
# libmariadb-dev and pkg-config, which pip needs to build mysqlclient for the MariaDB session.
APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null || return 1
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" </dev/null
}

if [ ! -x /usr/bin/chromium ]; then
    log "installing chromium (Debian) for the browser tests"
    if ! apt_install chromium; then
        echo "test.sh: could not install chromium; the browser tests will skip (fail under CI)." >&2
    fi
fi

# install_missing WHY WITHOUT PACKAGE...: installs the Debian packages that are not installed yet,
# for WHY; says WITHOUT (what goes wrong without them) when that fails.
install_missing() {
    local why=$1 without=$2 missing=() package
    shift 2
    for package in "$@"; do
        dpkg -s "$package" 2>/dev/null | grep -q "^Status: install ok installed" || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} (Debian) $why"
        apt_install "${missing[@]}" || echo "test.sh: could not install ${missing[*]}; $without." >&2
    fi
}

install_missing "for the Korean screenshots" "Korean screenshots show boxes" fonts-nanum
install_missing "to build mysqlclient" "mysqlclient will not build (MariaDB session fails)" \
    libmariadb-dev pkg-config

if [ "$FRESH" = 1 ] && [ -d .venv ]; then
    log "removing .venv (--fresh)"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $(command -v python3.11)"
    python3.11 -m venv .venv
fi

log "installing nox and uv into .venv"
.venv/bin/python -m pip install --quiet 'nox>=2024.4'
.venv/bin/python -m pip install --quiet uv || echo "test.sh: could not install uv." >&2
# nox and the packaging tests (python -m build, the wheel's install) use uv when UV names it.
if uv_bin=$(.venv/bin/python -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null) \
    && "$uv_bin" --version >/dev/null 2>&1; then
    export UV="$uv_bin"
else
    unset UV
    echo "test.sh: uv is not usable; nox falls back to virtualenv and pip." >&2
fi

NOX=(.venv/bin/python -m nox --noxfile "$ROOT/noxfile.py")
if [ "${#NOX_ARGS[@]}" -gt 0 ]; then
    log "nox ${NOX_ARGS[*]}"
    exec "${NOX[@]}" "${NOX_ARGS[@]}"
fi

# Every session, in two lanes side by side: the suites wait on workers, servers and browsers more
# than they compute, so two lanes on two cores take about two thirds of the time of one. Each
# session has a database and a Redis database of its own (noxfile.py).
mkdir -p test-artifacts
side_log=test-artifacts/nox-side.log
log "nox -t side (tests-3.11, tests-3.13) in the background, into $side_log"
"${NOX[@]}" -t side >"$side_log" 2>&1 </dev/null &
side_pid=$!
log "nox -t main (lint, typecheck, tests_mariadb, tests_sqlite, docs, release)"
main_status=0
"${NOX[@]}" -t main || main_status=$?
side_status=0
wait "$side_pid" || side_status=$?
log "nox -t side: its output"
cat "$side_log"
log "nox -t main: status $main_status; nox -t side: status $side_status"
[ "$main_status" = 0 ] && [ "$side_status" = 0 ]
