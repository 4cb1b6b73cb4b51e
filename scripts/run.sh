#!/usr/bin/env bash
# `make run`: installs what is missing, builds, and runs the service in the
# foreground — the backend on $BIND_ADDR (127.0.0.1:8080) and nginx on
# 127.0.0.1:$WEB_PORT (8000) serving the web UI and proxying the API.
# Ctrl-C stops both.
#
# Without DATABASE_URL it keeps its data in the durable run cluster of this
# checkout (scripts/pg.sh --run), database `test_executor`, and says where.
# The first run compiles the backend and the web UI's tools side by side
# when the machine has two cores or more; later runs rebuild only what
# changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export PATH="$HOME/.cargo/bin:$ROOT/.local/node/node_modules/.bin:$PATH"
export BIND_ADDR="${BIND_ADDR:-127.0.0.1:8080}"
# Everything here listens on 127.0.0.1, reached as 127.0.0.1 or localhost:
# any other host name is a page's DNS name rebound to this machine.
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-localhost}"
WEB_PORT="${WEB_PORT:-8000}"
RUN_DIR="$ROOT/.local/run"

log() { printf '[run] %s\n' "$*" >&2; }
die() { printf '[run] error: %s\n' "$*" >&2; exit 1; }

port_taken() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

# Who listens on a port, when ss can tell: " (nginx, pid 123)".
port_owner() {
    command -v ss >/dev/null 2>&1 || return 0
    ss -Hltnp "sport = :$1" 2>/dev/null |
        sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/ (\1, pid \2)/p' | head -1
}

# Each says what is wrong and how to get past it, in one line.
check_ports() {
    local backend_port="${BIND_ADDR##*:}"
    if [ "$backend_port" != 0 ] && port_taken "$backend_port"; then
        die "port $backend_port is taken$(port_owner "$backend_port"): stop what uses it, or pick another port: BIND_ADDR=127.0.0.1:8090 make run"
    fi
    if port_taken "$WEB_PORT"; then
        die "port $WEB_PORT is taken$(port_owner "$WEB_PORT"): stop what uses it, or pick another port: WEB_PORT=8001 make run"
    fi
}

check_disk() {
    [ ! -x target/release/test-executor ] || return 0
    local avail_kb
    avail_kb="$(df -Pk "$ROOT" | awk 'NR == 2 {print $4}')"
    if [ -n "$avail_kb" ] && [ "$avail_kb" -lt $(( 5 * 1024 * 1024 )) ]; then
        die "only $(( avail_kb / 1024 )) MB free where the checkout is: the first build needs about 5 GB; free some space, then make run again"
    fi
}

# Until this version, `make run` kept its runs in the test cluster (fast,
# not durable). A new run cluster takes them over once, before the backend
# first migrates it, so that an upgrade finds the old runs.
take_over_old_runs() {
    local pgbin test_data was_running=0 src
    pgbin="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    [ -x "$pgbin/pg_dump" ] || return 0
    test_data="$(scripts/pg.sh where)"
    [ -f "$test_data/PG_VERSION" ] || return 0
    scripts/pg.sh status 2>/dev/null && was_running=1
    src="$(scripts/pg.sh start 2>/dev/null)" || return 0
    src="${src%/*}/test_executor"
    if [ "$("$pgbin/psql" -X -tA "${src%/*}/postgres" \
        -c "SELECT 1 FROM pg_database WHERE datname = 'test_executor'" 2>/dev/null)" = 1 ]; then
        log "copying the runs of earlier 'make run's from the test cluster into the run cluster"
        if ! "$pgbin/pg_dump" --no-owner --no-privileges "$src" |
            "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" >/dev/null; then
            log "warning: the copy failed: starting with an empty history"
            "$pgbin/psql" -X -q "${DATABASE_URL%/*}/postgres" \
                -c 'DROP DATABASE test_executor' -c 'CREATE DATABASE test_executor'
        fi
    fi
    [ "$was_running" -eq 1 ] || scripts/pg.sh stop 2>/dev/null || true
}

# --- check, install ------------------------------------------------------------

check_ports
check_disk
# The quick installs (apt, pip, npm, rustup) now; the compiled tools below.
scripts/install-deps.sh run-base

PG_DATA=""
if [ -z "${DATABASE_URL:-}" ]; then
    PG_DATA="$(scripts/pg.sh --run where)"
    new_cluster=1
    [ -f "$PG_DATA/PG_VERSION" ] && new_cluster=0
    scripts/pg.sh --run start >/dev/null
    DATABASE_URL="$(scripts/pg.sh --run createdb test_executor)"
    [ "$new_cluster" -eq 0 ] || take_over_old_runs
    log "the runs are kept in $PG_DATA (durable: fsync on)"
fi
export DATABASE_URL

# --- build -----------------------------------------------------------------------

mkdir -p "$RUN_DIR"
BUILD_LOG="$RUN_DIR/backend-build.log"
BUILD_PID=""
# shellcheck disable=SC2317  # called from the traps
stop_build() {
    [ -n "$BUILD_PID" ] || return 0
    kill -TERM -- "-$BUILD_PID" 2>/dev/null || true
    wait "$BUILD_PID" 2>/dev/null || true
    BUILD_PID=""
}
trap 'stop_build; exit 130' INT
trap 'stop_build; exit 143' TERM
trap 'stop_build' EXIT

build_started=$SECONDS
if [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ] && command -v setsid >/dev/null 2>&1; then
    # Side by side: the backend in the background, the web UI's tools and
    # the web UI in the foreground. Each leaves cores idle at times (a long
    # crate, a link) that the other fills. In a session of its own, so that
    # Ctrl-C or a failure here stops the whole build.
    log "building the backend (release) in the background; its log: .local/run/backend-build.log"
    setsid cargo build --release -p backend >"$BUILD_LOG" 2>&1 &
    BUILD_PID=$!
else
    log "building the backend (release)"
    cargo build --release -p backend
fi
scripts/install-deps.sh spa-tools
scripts/frontend-build.sh --if-changed
if [ -n "$BUILD_PID" ]; then
    pid="$BUILD_PID"
    if ! wait "$pid"; then
        BUILD_PID=""
        tail -n 25 "$BUILD_LOG" >&2
        die "the backend did not build (the whole log: .local/run/backend-build.log)"
    fi
    BUILD_PID=""
fi
log "built in $(( SECONDS - build_started )) s"
# Something may have taken a port during the build.
check_ports

# --- supervise -------------------------------------------------------------

BACKEND_PID=""
NGINX_PID=""
STOPPING=0

# Let the backend wind down its running tests (it gives them up to
# SHUTDOWN_GRACE_SECS); a second Ctrl-C kills everything at once.
stop_all() {
    [ "$STOPPING" -eq 1 ] && return 0
    STOPPING=1
    trap 'log "killing"; kill -KILL $NGINX_PID $BACKEND_PID 2>/dev/null || true' INT
    trap - TERM
    local pid grace=$(( ${SHUTDOWN_GRACE_SECS:-30} + 10 ))
    for pid in $NGINX_PID $BACKEND_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    if [ -n "$BACKEND_PID" ] && kill -0 "$BACKEND_PID" 2>/dev/null; then
        log "stopping (running tests get up to ${SHUTDOWN_GRACE_SECS:-30} s; Ctrl-C again to kill)"
    fi
    for pid in $NGINX_PID $BACKEND_PID; do
        for _ in $(seq $(( grace * 10 ))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    log "stopped"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

log "starting the backend on $BIND_ADDR (log: .local/run/backend.log)"
rm -f "$RUN_DIR/backend.log"
# The log pipe ignores Ctrl-C so that the backend's last words still show.
target/release/test-executor > >(trap '' INT; exec tee "$RUN_DIR/backend.log") 2>&1 &
BACKEND_PID=$!

for _ in $(seq 600); do
    grep -q 'listening on' "$RUN_DIR/backend.log" 2>/dev/null && break
    kill -0 "$BACKEND_PID" 2>/dev/null || die "the backend exited during start-up (see above)"
    sleep 0.1
done
grep -q 'listening on' "$RUN_DIR/backend.log" || die "the backend did not start listening within 60 s"

# scripts/nginx.sh renders nginx/nginx.conf under .local/nginx and execs
# nginx in the foreground, so this pid is nginx's own.
log "starting nginx on 127.0.0.1:$WEB_PORT"
scripts/nginx.sh "$WEB_PORT" "$BIND_ADDR" &
NGINX_PID=$!
for _ in $(seq 100); do
    port_taken "$WEB_PORT" && break
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited during start-up (see .local/nginx/logs/error.log)"
    sleep 0.1
done
port_taken "$WEB_PORT" || die "nginx did not listen on $WEB_PORT within 10 s"
URL="http://127.0.0.1:$WEB_PORT/"

printf '\n\033[1m  test executor is up:  %s\033[0m\n' "$URL"
printf '  API: %sapi/health   (backend on %s)\n' "$URL" "$BIND_ADDR"
if [ -n "$PG_DATA" ]; then
    printf '  runs kept in: %s (scripts/pg.sh --run stop|start|where)\n' "$PG_DATA"
fi
# How to log in: the one-time setup code of a first start, or the admin's
# password (ADMIN_PASSWORD, or the one set with the code before).
SETUP_CODE="$(sed -n 's/.*one-time setup code \([0-9a-f]*\).*/\1/p' "$RUN_DIR/backend.log" | tail -1)"
if [ "${AUTH:-on}" = off ]; then
    printf '  AUTH=off: no login; anyone who reaches it is an admin\n'
elif [ -n "$SETUP_CODE" ]; then
    printf '  first start: open the web UI and enter the setup code \033[1m%s\033[0m,\n' "$SETUP_CODE"
    printf '  then choose the password of user "admin"\n'
elif [ -n "${ADMIN_PASSWORD:-}" ]; then
    printf '  log in as "admin" with the password in ADMIN_PASSWORD\n'
else
    printf '  log in as "admin" with the password set at the first start\n'
    printf '  (forgot it? ADMIN_PASSWORD only sets a first one: scripts/pg.sh --run clean, or\n'
    printf '   another admin resets it on the Users page)\n'
fi
printf '  Ctrl-C stops it.   (ready %d s after make run started)\n\n' "$SECONDS"

# Whichever stops first takes the other down.
set +e
# shellcheck disable=SC2086
wait -n $BACKEND_PID $NGINX_PID
status=$?
set -e
log "a process exited (status $status): stopping"
stop_all
exit "$status"
