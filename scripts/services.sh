#!/usr/bin/env bash
# shellcheck disable=SC2317  # the probes and starters below are called through ensure()
# Make sure the services the test suite talks to are up: PostgreSQL, MariaDB and Redis on
# 127.0.0.1. Starts whichever is down (with this machine's own start commands), then waits until
# each answers. Safe to run any number of times. Exit status 1 when a service cannot be brought up.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=${SERVICES_PG_PORT:-5432}
MARIADB_HOST=127.0.0.1
MARIADB_PORT=${SERVICES_MARIADB_PORT:-3306}
REDIS_HOST=127.0.0.1
REDIS_PORT=${SERVICES_REDIS_PORT:-6379}
WAIT_SECONDS=${SERVICES_WAIT_SECONDS:-60}

log() { printf 'services: %s\n' "$*" >&2; }

pg_up() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2
    else
        tcp_open "$PG_HOST" "$PG_PORT"
    fi
}

mariadb_up() {
    local admin
    if admin=$(command -v mariadb-admin || command -v mysqladmin); then
        timeout 5 "$admin" --protocol=tcp -h"$MARIADB_HOST" -P"$MARIADB_PORT" -uroot \
            --connect-timeout=2 ping >/dev/null 2>&1
    else
        tcp_open "$MARIADB_HOST" "$MARIADB_PORT"
    fi
}

redis_up() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
    else
        # No redis-cli: speak the protocol by hand over bash's /dev/tcp.
        timeout 3 bash -c '
            exec 3<>"/dev/tcp/$1/$2" || exit 1
            printf "PING\r\n" >&3
            IFS= read -r reply <&3
            [ "${reply%$'"'"'\r'"'"'}" = "+PONG" ]
        ' _ "$REDIS_HOST" "$REDIS_PORT" 2>/dev/null
    fi
}

tcp_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

start_pg() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /etc/postgresql ]; then
        log "PostgreSQL is down and pg_ctlcluster is not available: start it yourself on $PG_HOST:$PG_PORT."
        return 1
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    log "starting PostgreSQL $version (pg_ctlcluster $version main start)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
}

start_mariadb() {
    if [ ! -x /usr/sbin/mariadbd ]; then
        log "MariaDB is down and /usr/sbin/mariadbd is not installed: start it yourself on $MARIADB_HOST:$MARIADB_PORT."
        return 1
    fi
    log "starting MariaDB (start-stop-daemon --exec /usr/sbin/mariadbd)"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
}

start_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        log "Redis is down and redis-server is not installed: start it yourself on $REDIS_HOST:$REDIS_PORT."
        return 1
    fi
    log "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
}

# ensure NAME CHECK START
ensure() {
    local name=$1 check=$2 start=$3
    if "$check"; then
        log "$name is up"
        return 0
    fi
    log "$name is not answering"
    "$start" || return 1
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$check"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name did not answer within ${WAIT_SECONDS}s"
            return 1
        fi
        sleep 1
    done
    log "$name is up (started)"
}

status=0
ensure "PostgreSQL ($PG_HOST:$PG_PORT)" pg_up start_pg || status=1
ensure "MariaDB ($MARIADB_HOST:$MARIADB_PORT)" mariadb_up start_mariadb || status=1
ensure "Redis ($REDIS_HOST:$REDIS_PORT)" redis_up start_redis || status=1
exit "$status"
