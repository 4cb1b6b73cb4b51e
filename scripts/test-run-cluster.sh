#!/usr/bin/env bash
# Checks the PostgreSQL cluster `make run` keeps its runs in (scripts/pg.sh
# --run), as `make test` runs it: on a checkout made for the test, it
#   - is durable: fsync, synchronous_commit and full_page_writes are on;
#   - lives in a stable place: the checkout's .local/pg-run when the cluster's
#     owner can reach it, else /var/lib/test-executor (as root), never in a
#     temporary directory;
#   - keeps a committed row across a crash (an immediate stop, no
#     checkpoint) and across a stop and start (a reboot, as far as the
#     cluster can tell);
#   - is deleted only when asked twice (clean without --yes refuses).
# Needs the PostgreSQL server binaries (scripts/install-deps.sh backend).
# Ends with a line "N passed, N failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The defaults are what is under test.
unset PG_RUN_DIR PG_RUN_PORT
SYSTEM_DIR=/var/lib/test-executor

PASSED=0
FAILED=0
log() { printf '[test-run-cluster] %s\n' "$*" >&2; }
ok() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
check() { # check DESCRIPTION COMMAND...
    local what="$1"
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
not() { ! "$@"; }

PGBIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)"
[ -n "$PGBIN" ] || PGBIN="$(dirname "$(command -v pg_ctl || echo /nonexistent/x)")"
[ -x "$PGBIN/pg_ctl" ] || { log "PostgreSQL server binaries not found: run scripts/install-deps.sh backend"; exit 1; }

AS_ROOT=0
[ "$(id -u)" -eq 0 ] && AS_ROOT=1
as_owner() { if [ "$AS_ROOT" -eq 1 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# The checkouts made for the test live outside any temporary directory (a
# checkout under /tmp would rightly keep its cluster there): under
# /var/lib/test-executor as root, under ~/.cache otherwise.
if [ "$AS_ROOT" -eq 1 ]; then
    SYSTEM_EXISTED=0
    [ -d "$SYSTEM_DIR" ] && SYSTEM_EXISTED=1
    install -d -m 0755 "$SYSTEM_DIR"
    BASE="$(mktemp -d "$SYSTEM_DIR/selftest.XXXXXX")"
    chmod 0755 "$BASE"
else
    mkdir -p "${XDG_CACHE_HOME:-$HOME/.cache}"
    BASE="$(mktemp -d "${XDG_CACHE_HOME:-$HOME/.cache}/test-executor-selftest.XXXXXX")"
fi

CHECKOUTS=()
cleanup() {
    local c
    for c in "${CHECKOUTS[@]}"; do
        "$c/scripts/pg.sh" --run clean --yes >/dev/null 2>&1 || true
    done
    rm -rf "$BASE"
    if [ "$AS_ROOT" -eq 1 ] && [ "$SYSTEM_EXISTED" -eq 0 ]; then
        rm -f "$SYSTEM_DIR/README"
        rmdir "$SYSTEM_DIR" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# new_checkout DIR MODE: a checkout holding only scripts/pg.sh.
new_checkout() {
    install -d -m "$2" "$1"
    mkdir -p "$1/scripts"
    cp "$ROOT/scripts/pg.sh" "$1/scripts/pg.sh"
    CHECKOUTS+=("$1")
}

temporary_place() {
    local dir="$1" fstype
    case "$dir/" in /tmp/* | /var/tmp/* | /dev/shm/* | /run/*) return 0 ;; esac
    fstype="$(stat -f -c %T "$dir")"
    [ "$fstype" = tmpfs ]
}

sql() { # sql URL QUERY: one value
    "$PGBIN/psql" -X -q -tA -v ON_ERROR_STOP=1 "$1" -c "$2"
}

# check_cluster NAME CHECKOUT EXPECTED_DATA_DIR_PREFIX
check_cluster() {
    local name="$1" co="$2" expect="$3" pg data url setting
    pg="$co/scripts/pg.sh"
    log "$name: starting a run cluster for $co"
    url="$("$pg" --run start 2>/dev/null)"
    data="$("$pg" --run where)"
    check "$name: data directory $data is under $expect" \
        test "${data#"$expect"}" != "$data"
    check "$name: data directory is not in a temporary place" \
        not temporary_place "$data"
    check "$name: the server uses that directory" \
        test "$(sql "$url" 'SHOW data_directory')" = "$data"
    for setting in fsync synchronous_commit full_page_writes; do
        check "$name: $setting is on" test "$(sql "$url" "SHOW $setting")" = on
    done

    local db
    db="$("$pg" --run createdb selftest 2>/dev/null)"
    sql "$db" "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('before the crash')" >/dev/null

    # A crash: no shutdown checkpoint, recovery from the WAL at start.
    as_owner "$PGBIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null
    "$pg" --run start >/dev/null 2>&1
    db="$("$pg" --run url)"
    db="${db%/*}/selftest"
    check "$name: a committed row survives a crash" \
        test "$(sql "$db" 'SELECT note FROM kept')" = "before the crash"

    # A reboot, as the cluster sees it: stopped, then started again by the
    # next `make run`.
    "$pg" --run stop >/dev/null 2>&1
    check "$name: stopped" not "$pg" --run status
    "$pg" --run start >/dev/null 2>&1
    check "$name: the row is there after a stop and a start" \
        test "$(sql "$db" 'SELECT count(*) FROM kept')" = 1

    check "$name: clean without --yes refuses" not "$pg" --run clean 2>/dev/null
    check "$name: and keeps the data" test -f "$data/PG_VERSION"
    "$pg" --run clean --yes >/dev/null 2>&1
    check "$name: clean --yes deletes it" test ! -e "$data"
}

# 1. A checkout its owner can reach: the cluster lives in its .local.
new_checkout "$BASE/reachable" 0755
check_cluster "reachable checkout" "$BASE/reachable" "$BASE/reachable/.local/pg-run/"

# 2. As root, a checkout the postgres user cannot reach (a home that is
#    0700): the cluster lives in /var/lib/test-executor, not in /tmp.
if [ "$AS_ROOT" -eq 1 ]; then
    new_checkout "$BASE/private/checkout" 0700
    chmod 0700 "$BASE/private"
    check_cluster "private checkout" "$BASE/private/checkout" "$SYSTEM_DIR/pg-checkout-"
fi

echo
echo "run cluster: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
