#!/usr/bin/env bash
# A throwaway PostgreSQL for the sink tests, without Docker. Idempotent.
#
#   .ci/postgres.sh [start]   install (Debian packages) if needed, initdb, start, create smslane_test
#   .ci/postgres.sh stop      stop it (the data directory stays; start again reuses it)
#   .ci/postgres.sh status    exit 0 when it answers
#
# Settings: SMSLANE_PG_DIR (default /tmp/smslane-pg), SMSLANE_PG_PORT (default 55432).
# Listens on 127.0.0.1 only, with trust authentication: for tests, never for real data.
# On success, prints the line the caller exports:
#   SMSLANE_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:55432/smslane_test
set -euo pipefail

PG_DIR="${SMSLANE_PG_DIR:-/tmp/smslane-pg}"
PG_PORT="${SMSLANE_PG_PORT:-55432}"
PG_DB="smslane_test"
DATA_DIR="$PG_DIR/data"
RUN_DIR="$PG_DIR/run"
LOG_FILE="$PG_DIR/postgres.log"

log() { echo "postgres.sh: $*" >&2; }

find_bin_dir() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    # Debian keeps the server binaries off PATH, one directory per major version.
    local candidate
    candidate="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$candidate" && -x "$candidate/initdb" ]]; then
        echo "$candidate"
        return 0
    fi
    return 1
}

ensure_installed() {
    if BIN_DIR="$(find_bin_dir)"; then
        return 0
    fi
    if [[ "$(id -u)" != 0 ]]; then
        log "initdb not found and not root: install PostgreSQL (apt-get install postgresql) first"
        exit 1
    fi
    log "installing PostgreSQL from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends postgresql
    # The Debian package may start a cluster of its own on 5432; ours is separate.
    BIN_DIR="$(find_bin_dir)" || { log "initdb still not found after install"; exit 1; }
}

# The server refuses to run as root: run it as the postgres OS user when we are root.
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        # From a directory the postgres user may enter (the caller's may be private).
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

is_running() {
    [[ -f "$DATA_DIR/PG_VERSION" ]] && as_pg "$BIN_DIR/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1
}

answers() {
    "$BIN_DIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres
}

start() {
    ensure_installed
    mkdir -p "$PG_DIR" "$RUN_DIR"
    if [[ "$(id -u)" == 0 ]]; then
        if ! id postgres >/dev/null 2>&1; then
            useradd --system --home-dir "$PG_DIR" --shell /usr/sbin/nologin postgres
        fi
        chown postgres: "$PG_DIR" "$RUN_DIR"
    fi
    if [[ ! -f "$DATA_DIR/PG_VERSION" ]]; then
        log "initdb in $DATA_DIR"
        as_pg "$BIN_DIR/initdb" -D "$DATA_DIR" -U postgres --auth-local=trust --auth-host=trust \
            --encoding=UTF8 --locale=C >/dev/null
    fi
    if ! is_running; then
        if answers; then
            log "something else already answers on 127.0.0.1:$PG_PORT; set SMSLANE_PG_PORT"
            exit 1
        fi
        log "starting on 127.0.0.1:$PG_PORT (log: $LOG_FILE)"
        as_pg "$BIN_DIR/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $RUN_DIR -c max_connections=200" \
            start >/dev/null
    fi
    for _ in $(seq 1 60); do
        answers && break
        sleep 0.5
    done
    answers || { log "not answering on 127.0.0.1:$PG_PORT; see $LOG_FILE"; exit 1; }
    local psql=("$BIN_DIR/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
    if [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]]; then
        "${psql[@]}" -c "CREATE DATABASE $PG_DB" >/dev/null
    fi
    echo "SMSLANE_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/$PG_DB"
}

stop() {
    BIN_DIR="$(find_bin_dir)" || { log "PostgreSQL is not installed; nothing to stop"; return 0; }
    if is_running; then
        as_pg "$BIN_DIR/pg_ctl" -D "$DATA_DIR" -m fast -w stop >/dev/null
        log "stopped"
    else
        log "not running"
    fi
}

status() {
    BIN_DIR="$(find_bin_dir)" || { log "PostgreSQL is not installed"; exit 3; }
    if answers; then
        log "answering on 127.0.0.1:$PG_PORT"
    else
        log "not answering on 127.0.0.1:$PG_PORT"
        exit 3
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) log "usage: $0 [start|stop|status]"; exit 2 ;;
esac
