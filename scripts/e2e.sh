#!/usr/bin/env bash
# The browser end-to-end test: builds the SPA if needed, starts a fresh
# database in the project-local Postgres (scripts/pg.sh), the backend, and
# nginx, all on free ports, then drives headless Chromium through
# e2e/spa.test.cjs. Screenshots go to target/screenshots/. Everything it
# started is stopped again; exits non-zero when a step fails.
#
#   scripts/e2e.sh
#
# Environment: BACKEND_BIN (default: the newer of target/release and
# target/debug test-executor), CHROMIUM (/usr/bin/chromium), E2E_KEEP=1
# keeps .local/e2e (logs, tests root) afterwards.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH:/usr/sbin"

WORK="$ROOT/.local/e2e"
SHOTS="$ROOT/target/screenshots"
NODE_MODULES="$ROOT/.local/node/node_modules"

log() { printf '[e2e] %s\n' "$*" >&2; }
die() { printf '[e2e] error: %s\n' "$*" >&2; exit 1; }

# --- what it needs -----------------------------------------------------------

[ -d "$NODE_MODULES/playwright-core" ] ||
    die "playwright-core not found in .local/node: run scripts/install-deps.sh test"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[ -x "$CHROMIUM" ] || die "chromium not found: run scripts/install-deps.sh test"
command -v nginx >/dev/null 2>&1 || die "nginx not found: run scripts/install-deps.sh run"

if [ -z "${BACKEND_BIN:-}" ]; then
    for candidate in target/release/test-executor target/debug/test-executor; do
        [ -x "$candidate" ] || continue
        if [ -z "${BACKEND_BIN:-}" ] || [ "$candidate" -nt "$BACKEND_BIN" ]; then
            BACKEND_BIN="$candidate"
        fi
    done
fi
if [ -z "${BACKEND_BIN:-}" ] || [ ! -x "$BACKEND_BIN" ]; then
    die "no backend binary: run cargo build --release -p backend"
fi

if [ ! -f frontend/dist/index.html ]; then
    log "frontend/dist is missing: building the SPA"
    scripts/frontend-build.sh
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- start -------------------------------------------------------------------

rm -rf "$WORK"
mkdir -p "$WORK/tests"
rm -rf "$SHOTS"
mkdir -p "$SHOTS"

BACKEND_PID=""
NGINX_PID=""
DB_NAME=""
PG_WAS_RUNNING=0
STATUS=1

# shellcheck disable=SC2012
PSQL="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)/psql"
[ -x "$PSQL" ] || PSQL="$(command -v psql || true)"

# shellcheck disable=SC2317  # called from the EXIT trap
stop_pid() {
    local pid="$1" signal="$2"
    [ -n "$pid" ] || return 0
    kill "-$signal" "$pid" 2>/dev/null || return 0
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317
teardown() {
    set +e
    stop_pid "$NGINX_PID" QUIT
    stop_pid "$BACKEND_PID" TERM
    if [ "$STATUS" -ne 0 ]; then
        log "backend log (last lines):"
        tail -n 40 "$WORK/backend.log" >&2 2>/dev/null
        if [ -s "$WORK/nginx/logs/error.log" ]; then
            log "nginx error log (last lines):"
            tail -n 20 "$WORK/nginx/logs/error.log" >&2
        fi
    fi
    if [ -n "$DB_NAME" ] && [ -n "$PSQL" ]; then
        "$PSQL" -X -q "$(scripts/pg.sh url)" \
            -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 ||
            log "could not drop database $DB_NAME"
    fi
    if [ "$PG_WAS_RUNNING" -eq 0 ]; then
        scripts/pg.sh stop 2>/dev/null
    fi
    [ "${E2E_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if scripts/pg.sh status 2>/dev/null; then PG_WAS_RUNNING=1; fi
scripts/pg.sh start >/dev/null
DB_NAME="e2e_$$_$(date +%s)"
DATABASE_URL="$(scripts/pg.sh createdb "$DB_NAME" 2>/dev/null)"
log "database $DB_NAME"

# A tests root of its own: the sample tests plus the e2e fixtures, so that
# uploads never land in the checkout.
cp -R sample-tests/. "$WORK/tests/"
cp -R e2e/fixtures/. "$WORK/tests/"

BACKEND_PORT="$(free_port)"
WEB_PORT="$(free_port)"
while [ "$WEB_PORT" = "$BACKEND_PORT" ]; do WEB_PORT="$(free_port)"; done

log "backend $BACKEND_BIN on 127.0.0.1:$BACKEND_PORT"
# The test's own API calls carry this admin token; the browser logs in.
E2E_ADMIN_TOKEN="e2e-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ADMIN_TOKEN="$E2E_ADMIN_TOKEN" ADMIN_PASSWORD="e2e-$E2E_ADMIN_TOKEN" \
DATABASE_URL="$DATABASE_URL" BIND_ADDR="127.0.0.1:$BACKEND_PORT" TESTS_ROOT="$WORK/tests" \
    RUST_LOG="${RUST_LOG:-info}" "$BACKEND_BIN" >"$WORK/backend.log" 2>&1 &
BACKEND_PID=$!
for _ in $(seq 600); do
    grep -q 'listening on' "$WORK/backend.log" 2>/dev/null && break
    kill -0 "$BACKEND_PID" 2>/dev/null || die "the backend exited during start-up"
    sleep 0.1
done
grep -q 'listening on' "$WORK/backend.log" || die "the backend did not listen within 60 s"

log "nginx on 127.0.0.1:$WEB_PORT"
NGINX_PREFIX="$WORK/nginx" scripts/nginx.sh "$WEB_PORT" "127.0.0.1:$BACKEND_PORT" \
    >"$WORK/nginx.out" 2>&1 &
NGINX_PID=$!
BASE="http://127.0.0.1:$WEB_PORT"
for _ in $(seq 100); do
    curl -fsS -o /dev/null "$BASE/api/health" 2>/dev/null && break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/nginx.out" >&2; die "nginx exited during start-up"; }
    sleep 0.1
done
curl -fsS -o /dev/null "$BASE/" || die "nginx does not serve the SPA at $BASE/"
curl -fsS -o /dev/null "$BASE/api/health" || die "nginx does not reach the backend at $BASE/api/health"

# --- test --------------------------------------------------------------------

log "running e2e/spa.test.cjs against $BASE"
set +e
E2E_ADMIN_TOKEN="$E2E_ADMIN_TOKEN" E2E_BASE_URL="$BASE" E2E_SCREENSHOTS="$SHOTS" CHROMIUM="$CHROMIUM" NODE_PATH="$NODE_MODULES" \
    node e2e/spa.test.cjs
STATUS=$?
set -e
log "screenshots in target/screenshots/ ($(find "$SHOTS" -name '*.png' | wc -l) files)"
exit "$STATUS"
