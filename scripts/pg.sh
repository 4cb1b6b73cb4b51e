#!/usr/bin/env bash
# The project-local PostgreSQL clusters of this checkout, on 127.0.0.1 with
# trust authentication. They never touch a PostgreSQL that may already run
# on the machine. There are two, for two purposes:
#
#   the test cluster (default): throwaway, for `make test`, the benches and
#     development. Durability is traded for speed (fsync, synchronous_commit
#     and full_page_writes off). Under .local/pg, or in /tmp when the
#     postgres user cannot reach the checkout. Port $PG_PORT (54329).
#   the run cluster (--run): where `make run` keeps its runs. Durable
#     (PostgreSQL's defaults: fsync, synchronous_commit, full_page_writes
#     on) and in a place that survives reboots: .local/pg-run, or, when the
#     postgres user cannot reach the checkout (as root, under /root),
#     /var/lib/test-executor/pg-<checkout>-<hash>. $PG_RUN_DIR overrides
#     the place. Port $PG_RUN_PORT (54319).
#
#   scripts/pg.sh [--run] start          create it if needed, start it if
#                                        stopped; prints its DATABASE_URL
#                                        (without an explicit port, a taken
#                                        one moves it to the next free port)
#   scripts/pg.sh [--run] url            prints its DATABASE_URL
#   scripts/pg.sh [--run] createdb NAME  creates database NAME if missing
#                                        (starting the cluster if needed);
#                                        prints its URL
#   scripts/pg.sh [--run] status         exit 0 if it runs
#   scripts/pg.sh [--run] where          prints its data directory
#   scripts/pg.sh [--run] stop           stops it (no-op when stopped)
#   scripts/pg.sh clean                  stops the test cluster, deletes it
#   scripts/pg.sh --run clean --yes      the same for the run cluster: every
#                                        run it holds is lost
#
# Only URLs and the data directory go to stdout, so
# `export DATABASE_URL=$(scripts/pg.sh start)` works; the rest goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

CLUSTER="test"
if [ "${1:-}" = "--run" ]; then
    CLUSTER=run
    shift
fi

if [ "$CLUSTER" = run ]; then
    PORT="${PG_RUN_PORT:-54319}"
    PORT_EXPLICIT="${PG_RUN_PORT:+yes}"
    PORT_VAR=PG_RUN_PORT
    DIR="${PG_RUN_DIR:-$ROOT/.local/pg-run}"
    TAG="[pg run]"
else
    PORT="${PG_PORT:-54329}"
    PORT_EXPLICIT="${PG_PORT:+yes}"
    PORT_VAR=PG_PORT
    DIR="$ROOT/.local/pg"
    TAG="[pg]"
fi
# Where the run cluster goes when the postgres user cannot reach .local.
SYSTEM_DIR=/var/lib/test-executor

log() { printf '%s %s\n' "$TAG" "$*" >&2; }
die() { printf '%s error: %s\n' "$TAG" "$*" >&2; exit 1; }

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
# test cluster then lives in /tmp, and the run cluster in $SYSTEM_DIR, each
# under a name derived from the checkout.
reachable() { runuser -u postgres -- test -x "$1" 2>/dev/null; }

checkout_hash() { printf '%s' "$ROOT" | cksum | cut -d' ' -f1; }

resolve_test_dir() {
    [ "$AS_ROOT" -eq 1 ] || return 0
    local parent="$ROOT/.local"
    if [ -d "$DIR" ] && runuser -u postgres -- test -w "$DIR" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$parent"
    reachable "$parent" && return 0
    DIR="${TMPDIR:-/tmp}/test-executor-pg-$(checkout_hash)"
}

resolve_run_dir() {
    [ -z "${PG_RUN_DIR:-}" ] || return 0
    [ "$AS_ROOT" -eq 1 ] || return 0
    local system
    system="$SYSTEM_DIR/pg-$(basename "$ROOT" | tr -c 'A-Za-z0-9._\n-' '_')-$(checkout_hash)"
    # Wherever it was created first, it stays.
    if [ -f "$DIR/data/PG_VERSION" ]; then return 0; fi
    if [ -f "$system/data/PG_VERSION" ]; then DIR="$system"; return 0; fi
    mkdir -p "$ROOT/.local"
    reachable "$ROOT/.local" && return 0
    DIR="$system"
}

resolve_dir() {
    if [ "$CLUSTER" = run ]; then resolve_run_dir; else resolve_test_dir; fi
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

# The lines scripts/pg.sh adds to a new cluster's postgresql.conf.
cluster_settings() {
    if [ "$CLUSTER" = run ]; then
        # The run history is what people keep this service for: a crash or
        # a power cut must lose no committed run. These are PostgreSQL's
        # defaults, written out so that nobody mistakes this cluster for
        # the test one.
        cat <<'EOF'

# added by scripts/pg.sh: the run cluster (`make run`), durable
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
    else
        # A throwaway cluster for development and tests: durability is
        # traded for speed (every test creates databases), and integration
        # tests that spawn many services need more connections than the
        # default 100.
        cat <<'EOF'

# added by scripts/pg.sh: the test cluster, fast and NOT durable
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
EOF
    fi
}

init_cluster() {
    [ -f "$(datadir)/PG_VERSION" ] && return 0
    log "creating a cluster in $DIR"
    if [ "$AS_ROOT" -eq 1 ]; then
        if [ "$CLUSTER" = run ] && [ "${DIR#"$SYSTEM_DIR"/}" != "$DIR" ]; then
            install -d -m 0755 "$SYSTEM_DIR"
            printf '%s\n' "Data of the PostgreSQL clusters that 'make run' of a test executor" \
                "checkout keeps its runs in (scripts/pg.sh --run); each directory's" \
                "file 'checkout' names its checkout." >"$SYSTEM_DIR/README"
        fi
        install -d -o postgres -g postgres -m 0700 "$DIR"
    else
        install -d -m 0700 "$DIR"
    fi
    printf '%s\n' "$ROOT" | as_owner tee "$DIR/checkout" >/dev/null
    as_owner "$PGBIN/initdb" -D "$(datadir)" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || {
        cat "$DIR/initdb.log" >&2
        die "initdb failed"
    }
    cluster_settings | as_owner tee -a "$(datadir)/postgresql.conf" >/dev/null
}

# A warning when the run cluster sits where a reboot may wipe it.
check_durable_place() {
    [ "$CLUSTER" = run ] || return 0
    local fstype
    fstype="$(stat -f -c %T "$DIR" 2>/dev/null || true)"
    case "$DIR/" in
        /tmp/* | /var/tmp/* | /dev/shm/* | /run/*)
            log "warning: $DIR is a temporary place: the runs may not survive a reboot" ;;
        *)
            [ "$fstype" != tmpfs ] ||
                log "warning: $DIR is on a tmpfs: the runs will not survive a reboot" ;;
    esac
}

start() {
    need_binaries
    init_cluster
    check_durable_place
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
        [ -z "$PORT_EXPLICIT" ] || die "port $PORT is taken: choose another $PORT_VAR"
        local p wanted="$PORT"
        for p in $(seq "$((PORT + 1))" "$((PORT + 40))"); do
            port_taken "$p" || { PORT="$p"; break; }
        done
        port_taken "$PORT" && die "no free port near $PORT: set $PORT_VAR"
        log "port $wanted is taken (another checkout's cluster?): using $PORT"
    fi
    log "starting on 127.0.0.1:$PORT"
    if ! as_owner "$PGBIN/pg_ctl" -D "$(datadir)" -l "$DIR/server.log" -w -t 60 \
        -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sockdir'" \
        start >&2; then
        tail -n 20 "$DIR/server.log" >&2 || true
        die "PostgreSQL did not start (is port $PORT taken? set $PORT_VAR)"
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

clean() {
    if [ "$CLUSTER" = run ] && [ "${1:-}" != --yes ]; then
        die "this deletes every run of 'make run' in $DIR: say 'scripts/pg.sh --run clean --yes'"
    fi
    stop
    log "deleting $DIR"
    rm -rf "$DIR"
}

resolve_dir
case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) url ;;
    status) running ;;
    where) datadir; printf '\n' ;;
    createdb) createdb "${2:-}" ;;
    clean) clean "${2:-}" ;;
    *)
        sed -n '2,33p' "$0" >&2
        exit 2
        ;;
esac
