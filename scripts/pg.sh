#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for this checkout, under .local/pg, on
# 127.0.0.1:$PG_PORT (default 54329) with trust authentication. It never
# touches a PostgreSQL that may already run on the machine.
#
#   scripts/pg.sh start          create it if needed, start it if stopped;
#                                prints its DATABASE_URL (without PG_PORT,
#                                a taken 54329 moves it to the next free port)
#   scripts/pg.sh url            prints its DATABASE_URL
#   scripts/pg.sh createdb NAME  creates database NAME if missing (starting
#                                the cluster if needed); prints its URL
#   scripts/pg.sh status         exit 0 if it runs
#   scripts/pg.sh stop           stops it (no-op when stopped)
#   scripts/pg.sh clean          stops it and deletes it
#
# Only URLs go to stdout, so `export DATABASE_URL=$(scripts/pg.sh start)`
# works; everything else goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PG_PORT:-54329}"
PORT_EXPLICIT="${PG_PORT:+yes}"
DIR="$ROOT/.local/pg"

log() { printf '[pg] %s\n' "$*" >&2; }
die() { printf '[pg] error: %s\n' "$*" >&2; exit 1; }

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$PGBIN" ]; then
    # Not Debian's layout: whatever is on PATH.
    PGBIN="$(dirname "$(command -v initdb 2>/dev/null || command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")"
fi

AS_ROOT=0
[ "$(id -u)" -eq 0 ] && AS_ROOT=1

# initdb refuses to run as root: the cluster belongs to the postgres user.
as_owner() {
    if [ "$AS_ROOT" -eq 1 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

need_binaries() {
    if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
        die "PostgreSQL server binaries not found: run scripts/install-deps.sh backend"
    fi
    if [ "$AS_ROOT" -eq 1 ]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user"
    fi
}

# As root, the postgres user must be able to reach the cluster's directory.
# A checkout under a private home (/root is 0700) is out of its reach: the
# cluster then lives in /tmp, under a name derived from the checkout.
resolve_dir() {
    [ "$AS_ROOT" -eq 1 ] || return 0
    local parent="$ROOT/.local"
    if [ -d "$DIR" ] && runuser -u postgres -- test -w "$DIR" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$parent"
    if runuser -u postgres -- test -x "$parent" 2>/dev/null; then
        return 0
    fi
    DIR="${TMPDIR:-/tmp}/test-executor-pg-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
}

datadir() { printf '%s/data' "$DIR"; }

running() {
    [ -f "$(datadir)/PG_VERSION" ] || return 1
    as_owner "$PGBIN/pg_ctl" -D "$(datadir)" status >/dev/null 2>&1
}

# The port of the running cluster (from its pid file), else $PG_PORT.
current_port() {
    local p=""
    if running; then
        p="$(sed -n 4p "$(datadir)/postmaster.pid" 2>/dev/null || true)"
    fi
    printf '%s' "${p:-$PORT}"
}

port_taken() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

url() { printf 'postgres://postgres@127.0.0.1:%s/%s\n' "$(current_port)" "${1:-postgres}"; }

init_cluster() {
    [ -f "$(datadir)/PG_VERSION" ] && return 0
    log "creating a cluster in $DIR"
    if [ "$AS_ROOT" -eq 1 ]; then
        install -d -o postgres -g postgres -m 0700 "$DIR"
    else
        install -d -m 0700 "$DIR"
    fi
    as_owner "$PGBIN/initdb" -D "$(datadir)" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || {
        cat "$DIR/initdb.log" >&2
        die "initdb failed"
    }
    # A throwaway cluster for development and tests: durability is traded
    # for speed (every test creates databases), and integration tests that
    # spawn many services need more connections than the default 100.
    as_owner tee -a "$(datadir)/postgresql.conf" >/dev/null <<'EOF'

# added by scripts/pg.sh
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
EOF
}

start() {
    need_binaries
    init_cluster
    if running; then
        log "already running on port $(current_port)"
        url
        return 0
    fi
    # A Unix socket path is limited to about 100 bytes: without room for
    # one, the cluster listens on TCP only.
    local sockdir="$DIR"
    if [ "$(( ${#DIR} + 20 ))" -gt 100 ]; then
        sockdir=""
    fi
    if port_taken "$PORT"; then
        [ -z "$PORT_EXPLICIT" ] || die "port $PORT is taken: choose another PG_PORT"
        local p wanted="$PORT"
        for p in $(seq "$((PORT + 1))" "$((PORT + 40))"); do
            port_taken "$p" || { PORT="$p"; break; }
        done
        port_taken "$PORT" && die "no free port near $PORT: set PG_PORT"
        log "port $wanted is taken (another checkout's cluster?): using $PORT"
    fi
    log "starting on 127.0.0.1:$PORT"
    if ! as_owner "$PGBIN/pg_ctl" -D "$(datadir)" -l "$DIR/server.log" -w -t 60 \
        -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sockdir'" \
        start >&2; then
        tail -n 20 "$DIR/server.log" >&2 || true
        die "PostgreSQL did not start (is port $PORT taken? set PG_PORT)"
    fi
    url
}

stop() {
    if running; then
        log "stopping"
        as_owner "$PGBIN/pg_ctl" -D "$(datadir)" -m fast -w stop >&2
    else
        log "not running"
    fi
}

createdb() {
    local name="${1:-}"
    [[ "$name" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "bad database name: '$name'"
    running || start >/dev/null
    local psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$(url postgres)")
    if [ -z "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]; then
        log "creating database $name"
        "${psql[@]}" -c "CREATE DATABASE \"$name\"" >&2
    fi
    url "$name"
}

resolve_dir
case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) url ;;
    status) running ;;
    createdb) createdb "${2:-}" ;;
    clean)
        stop
        log "deleting $DIR"
        rm -rf "$DIR"
        ;;
    *)
        sed -n '2,16p' "$0" >&2
        exit 2
        ;;
esac
