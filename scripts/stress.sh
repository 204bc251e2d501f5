#!/usr/bin/env bash
# Run one nox session several times in a row while another process keeps one core busy:
#   bash scripts/stress.sh tests-3.11           # 5 runs of tests-3.11
#   bash scripts/stress.sh tests_mariadb 3      # 3 runs
#   bash scripts/stress.sh tests_sqlite 2 -- -x tests/test_checks.py   # after --: to pytest
# Each run goes through scripts/test.sh (services, .venv, interpreters), so the first one also
# sets up what is missing. Stops at the first failing run and exits with its status; the busy
# process is stopped however the script ends. Not part of CI: a whole session takes minutes.
set -euo pipefail

cd "$(dirname "$0")/.."

usage() {
    echo "usage: bash scripts/stress.sh SESSION [RUNS] [-- NOX_ARGS...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
SESSION=$1
shift
RUNS=5
if [ $# -ge 1 ] && [ "$1" != "--" ]; then
    RUNS=$1
    shift
fi
case $RUNS in
    '' | *[!0-9]* | 0) usage ;;
esac
EXTRA=()
if [ $# -ge 1 ]; then
    [ "$1" = "--" ] || usage
    shift
    EXTRA=("$@")
fi

log() { printf '\n==> stress: %s\n' "$*" >&2; }

# The busy process: one core spinning for as long as the runs last. Each run is a background job
# in its own process group (set -m), waited for, so that INT or TERM stops it (nox, pytest and
# the workers) and the busy process at once instead of after the run.
set -m
yes >/dev/null &
BUSY_PID=$!
RUN_PID=
stop() {
    if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then
        kill -TERM -- "-$RUN_PID" 2>/dev/null || true
        wait "$RUN_PID" 2>/dev/null || true
    fi
    kill "$BUSY_PID" 2>/dev/null || true
    wait "$BUSY_PID" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log "keeping one core busy (pid $BUSY_PID); $RUNS runs of $SESSION"

for run in $(seq 1 "$RUNS"); do
    log "run $run/$RUNS of $SESSION"
    start=$SECONDS
    if [ "${#EXTRA[@]}" -gt 0 ]; then
        bash scripts/test.sh -s "$SESSION" -- "${EXTRA[@]}" </dev/null &
    else
        bash scripts/test.sh -s "$SESSION" </dev/null &
    fi
    RUN_PID=$!
    status=0
    wait "$RUN_PID" || status=$?
    RUN_PID=
    if [ "$status" -ne 0 ]; then
        log "run $run/$RUNS of $SESSION failed (status $status) after $((SECONDS - start)) s"
        exit "$status"
    fi
    log "run $run/$RUNS of $SESSION passed in $((SECONDS - start)) s"
done
log "all $RUNS runs of $SESSION passed"
