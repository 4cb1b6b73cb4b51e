#!/usr/bin/env bash
# `make run`: installs what is missing, builds, and runs the service in the
# foreground — the backend on $BIND_ADDR (127.0.0.1:8080) and, once the SPA
# is there, nginx on 127.0.0.1:$WEB_PORT (8000) serving it and proxying the
# API. Ctrl-C stops both.
#
# Without DATABASE_URL it uses the project-local cluster (scripts/pg.sh) and
# its database `test_executor`.
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

have_spa() { [ -x scripts/frontend-build.sh ] && [ -x scripts/nginx.sh ]; }
port_taken() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

# --- prepare ---------------------------------------------------------------

if have_spa; then
    scripts/install-deps.sh all
else
    scripts/install-deps.sh backend
fi

if [ -z "${DATABASE_URL:-}" ]; then
    scripts/pg.sh start >/dev/null
    DATABASE_URL="$(scripts/pg.sh createdb test_executor)"
fi
export DATABASE_URL

backend_port="${BIND_ADDR##*:}"
port_taken "$backend_port" && die "port $backend_port is taken: stop what uses it or set BIND_ADDR"
if have_spa; then
    port_taken "$WEB_PORT" && die "port $WEB_PORT is taken: stop what uses it or set WEB_PORT"
fi

log "building the backend (release)"
cargo build --release -p backend
if have_spa; then
    log "building the SPA"
    scripts/frontend-build.sh
fi

mkdir -p "$RUN_DIR"

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

URL="http://$BIND_ADDR/"
if have_spa; then
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
fi

printf '\n\033[1m  test executor is up:  %s\033[0m\n' "$URL"
if have_spa; then
    printf '  API: %sapi/health   (backend on %s)\n' "$URL" "$BIND_ADDR"
else
    printf '  API only (the SPA is not built): %sapi/health\n' "$URL"
fi
printf '  Ctrl-C stops it.\n\n'

# Whichever stops first takes the other down.
set +e
# shellcheck disable=SC2086
wait -n $BACKEND_PID $NGINX_PID
status=$?
set -e
log "a process exited (status $status): stopping"
stop_all
exit "$status"
