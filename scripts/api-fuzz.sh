#!/usr/bin/env bash
# Fuzzes the live service with schemathesis against its own OpenAPI
# document (/api/openapi.json): every operation, stateless, with a fixed
# seed and a bounded number of examples, so that it finishes in CI.
#
#   scripts/api-fuzz.sh            (make test runs it after cargo test)
#
# It fails on any 5xx, any answer whose status, content type, headers or
# body contradict the document (every 4xx/5xx must carry the JSON error
# body), any schema-invalid request that is not refused with a 4xx, and
# any panic in the service's log.
#
# On its own: a throwaway database (in DATABASE_URL's server, else the
# project-local cluster of scripts/pg.sh), a copy of sample-tests as the
# tests root (the fuzzer uploads and deletes files), the debug binary on a
# free port; all removed afterwards. schemathesis (pinned below) is
# installed into .local/schemathesis on first use.
#
# Knobs: FUZZ_EXAMPLES (examples per operation, default 100), FUZZ_SEED
# (default 20261122), FUZZ_WORKERS (default 1: one worker keeps a seed's
# run reproducible, and Python 3.11 before 3.11.9 can fail with "AST
# constructor recursion depth mismatch" when hypothesis parses source in
# several threads at once).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SCHEMATHESIS_VERSION="4.32.5"
VENV="$ROOT/.local/schemathesis"
OUT="$ROOT/.local/api-fuzz"
EXAMPLES="${FUZZ_EXAMPLES:-100}"
SEED="${FUZZ_SEED:-20261122}"
WORKERS="${FUZZ_WORKERS:-1}"

export PATH="$HOME/.cargo/bin:$PATH"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[api-fuzz] %s\n' "$*" >&2; }
die() { printf '[api-fuzz] error: %s\n' "$*" >&2; exit 1; }

# --- schemathesis, pinned, in a venv of its own ------------------------------

st_ok() { [ "$("$VENV/bin/st" --version 2>/dev/null | awk '{print $NF}')" = "$SCHEMATHESIS_VERSION" ]; }
if ! st_ok; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into .local/schemathesis"
    rm -rf "$VENV"
    python3 -m venv "$VENV" ||
        die "python3 -m venv failed: install python3-venv (scripts/install-deps.sh test)"
    "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" >&2
    st_ok || die "schemathesis $SCHEMATHESIS_VERSION did not install"
fi

# --- a database, a tests root, the service -----------------------------------

SERVER_URL="${DATABASE_URL:-$(scripts/pg.sh start)}"
DB_NAME="te_api_fuzz_$$"
# The same server and credentials, another database name.
db_url() {
    python3 - "$SERVER_URL" "$1" <<'EOF'
import sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(url._replace(path="/" + sys.argv[2])))
EOF
}
ADMIN_URL="$(db_url postgres)"
FUZZ_DB_URL="$(db_url "$DB_NAME")"
command -v psql >/dev/null 2>&1 || die "psql not found: run scripts/install-deps.sh backend"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/api-fuzz.XXXXXX")"
SERVICE_PID=""
cleanup() {
    if [ -n "$SERVICE_PID" ]; then
        kill -TERM "$SERVICE_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVICE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVICE_PID" 2>/dev/null || true
    fi
    psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "CREATE DATABASE $DB_NAME" >/dev/null
cp -r sample-tests "$WORK/tests"
mkdir -p "$OUT"

log "building the backend (debug)"
cargo build -q -p backend --bins

# Every operation is called as an admin, with a token of this run's own.
ADMIN_TOKEN="fuzz-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
AUTH_HEADER="Authorization: Bearer $ADMIN_TOKEN"

log "starting the service on a free port"
# Made before the service starts: the loop below may read it first.
: >"$WORK/stdout"
ADMIN_TOKEN="$ADMIN_TOKEN" ADMIN_PASSWORD="fuzz-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
DATABASE_URL="$FUZZ_DB_URL" BIND_ADDR=127.0.0.1:0 TESTS_ROOT="$WORK/tests" \
    MAX_PARALLEL_RUNS=2 RUN_TIMEOUT_SECS=60 KILL_GRACE_MS=300 SCHEDULER_TICK_MS=200 \
    RUST_LOG=info INSTANCE_ID="api-fuzz-$$" \
    target/debug/test-executor >"$WORK/stdout" 2>"$OUT/service.log" &
SERVICE_PID=$!
BASE=""
for _ in $(seq 300); do
    BASE="$(sed -n 's/^listening on //p' "$WORK/stdout")"
    [ -n "$BASE" ] && break
    kill -0 "$SERVICE_PID" 2>/dev/null || { cat "$OUT/service.log" >&2; die "the service exited"; }
    sleep 0.1
done
[ -n "$BASE" ] || die "the service did not start within 30 s"

# A finished run with cases, a log and a report, so that the examples
# (run id 1) reach real data rather than 404s.
curl -fsS -X POST "$BASE/api/runs" -H 'Content-Type: application/json' -H "$AUTH_HEADER" \
    -d '{"environment_id": 1, "paths": ["smoke/test_fast.py", "dummy/test_fail.py"]}' >/dev/null
for _ in $(seq 300); do
    status="$(curl -fsS -H "$AUTH_HEADER" "$BASE/api/runs/1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
    case "$status" in queued | running) sleep 0.1 ;; *) break ;; esac
done
log "seed run 1: $status"

# --- schemathesis ------------------------------------------------------------

# positive_data_acceptance is left out: schema-valid is not valid here
# (a path must exist in the catalog, a variable name must be an
# identifier, a file must compile), and those refusals are 4xx by design.
# The stateful checks need the stateful phase, which this run leaves out.
log "schemathesis $SCHEMATHESIS_VERSION: seed $SEED, $EXAMPLES examples per operation"
set +e
# From the scratch directory: schemathesis leaves a .schemathesis cache.
(cd "$WORK" && "$VENV/bin/st" run "$BASE/api/openapi.json" \
    --phases examples,coverage,fuzzing \
    --header "$AUTH_HEADER" \
    --checks all \
    --exclude-checks positive_data_acceptance,use_after_free,ensure_resource_availability,ignored_auth \
    --max-examples "$EXAMPLES" \
    --seed "$SEED" \
    --workers "$WORKERS" \
    --request-timeout 30 \
    --no-color \
    --report junit --report-junit-path "$OUT/junit.xml")
st_status=$?
set -e

if grep -q 'panicked' "$OUT/service.log"; then
    grep -B2 -A5 'panicked' "$OUT/service.log" >&2
    die "the service panicked (log: .local/api-fuzz/service.log)"
fi
kill -0 "$SERVICE_PID" 2>/dev/null || die "the service died during the fuzzing"
[ "$st_status" -eq 0 ] || die "schemathesis found problems (exit $st_status); service log: .local/api-fuzz/service.log"
log "no problems found"
