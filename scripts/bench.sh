#!/usr/bin/env bash
# The benchmark suite (issue 7), run by `make bench`: builds the release
# backend, then bench/bench.py starts its own databases (in the Postgres
# server of DATABASE_URL, else the project-local cluster of scripts/pg.sh),
# backends and load, and prints one table of figures next to their targets.
# BENCHMARKS.md explains every figure. It takes about 17 minutes on 2 cores.
#
#   BENCH_QUICK=1     fewer repetitions and runs (about 2 minutes), for a
#                     quick look; not for BENCHMARKS.md
#   BENCH_PHASES=...  a comma-separated subset of
#                     dispatch,overhead,runlist,drain,biglog,insights,
#                     browsers,flood,instances,browser,spa (the default),
#                     or scale (1 000 000 runs, 20 000 000 case rows: a
#                     phase of its own, about 20 minutes)
#   BENCH_STRICT=1    exit 1 when a target is missed
#   BENCH_KEEP=1      keep the scratch directory (backend logs, stamps)
#   BENCH_PYTHON      the interpreter that runs pytest (default: the real
#                     executable behind python3, past any pyenv shim)
#   BENCH_BINARY      a backend binary to measure instead of building one
#
# Results also go to target/bench/latest.{md,json}. Everything it starts is
# stopped on exit, and all traffic stays on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH:/usr/sbin"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------

if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else SUDO=(); fi

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# apt_install PKG...: only the missing ones, with one `apt-get update`.
apt_install() {
    local missing=() p
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "install ${missing[*]} by hand (no apt-get)"
    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
}

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
find_tool() {
    if [ -n "$PGBIN" ] && [ -x "$PGBIN/$1" ]; then echo "$PGBIN/$1"; else command -v "$1" || true; fi
}

command -v wrk >/dev/null 2>&1 || apt_install wrk
# pgbench ships with the PostgreSQL server packages on Debian.
if [ -z "$(find_tool pgbench)" ] || [ -z "$(find_tool psql)" ]; then
    scripts/install-deps.sh backend
    PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
fi
PGBENCH="$(find_tool pgbench)"
PSQL="$(find_tool psql)"
[ -n "$PGBENCH" ] || die "pgbench not found"
[ -n "$PSQL" ] || die "psql not found"
command -v wrk >/dev/null 2>&1 || die "wrk not found"

if [ -z "${BENCH_PYTHON:-}" ]; then
    python3 -m pytest --version >/dev/null 2>&1 || scripts/install-deps.sh backend
    # A pyenv shim costs ~100 ms per start: run the interpreter behind it.
    BENCH_PYTHON="$(python3 -c 'import sys; print(sys.executable)')"
fi
"$BENCH_PYTHON" -m pytest --version >/dev/null 2>&1 || die "$BENCH_PYTHON has no pytest"

# --- build ---------------------------------------------------------------------

if [ -z "${BENCH_BINARY:-}" ]; then
    log "cargo build --release -p backend"
    cargo build --release -q -p backend
    BENCH_BINARY="$ROOT/target/release/test-executor"
fi
[ -x "$BENCH_BINARY" ] || die "no backend binary at $BENCH_BINARY"
log "cargo build --release --example browsers"
cargo build --release -q -p backend --example browsers
BROWSERS="$ROOT/target/release/examples/browsers"

# The browser phase drives the built SPA through nginx in headless Chromium.
case ",${BENCH_PHASES:-browser}," in
    *,browser,*)
        if [ ! -f frontend/dist/index.html ]; then
            log "frontend/dist is missing: building the SPA"
            scripts/frontend-build.sh
        fi
        command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || scripts/install-deps.sh run
        [ -d .local/node/node_modules/playwright-core ] || scripts/install-deps.sh test
        ;;
esac

WORK="$(mktemp -d "${TMPDIR:-/tmp}/test-executor-bench.XXXXXX")"
BENCH_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true
        # bench.py stops its backends and drops its databases; bounded wait.
        for _ in $(seq 1 100); do kill -0 "$BENCH_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$BENCH_PID" 2>/dev/null || true
    fi
    # Backends bench.py could not stop itself: by pid, if still ours.
    local pid
    for pid in $(cat "$WORK/backend.pids" 2>/dev/null || true); do
        if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$WORK/test-executor" ]; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ "${BENCH_KEEP:-}" = 1 ]; then log "scratch kept in $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private copy: a rebuild during the run cannot pull the binary (and the
# supervisor it re-executes) from under the running backends.
cp "$BENCH_BINARY" "$WORK/test-executor"
# A separate supervisor binary, if the build has one, goes along.
if [ -x "$(dirname "$BENCH_BINARY")/test-executor-supervise" ]; then
    cp "$(dirname "$BENCH_BINARY")/test-executor-supervise" "$WORK/"
fi
rustc -O --edition 2021 -o "$WORK/stamp" bench/stamp.rs

ADMIN_URL="${DATABASE_URL:-$(scripts/pg.sh start)}"

log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -m | awk '/^Mem:/ {print $2 " MB"}') RAM"
python3 bench/bench.py \
    --root "$ROOT" \
    --binary "$WORK/test-executor" \
    --stamp "$WORK/stamp" \
    --python "$BENCH_PYTHON" \
    --admin-url "$ADMIN_URL" \
    --work "$WORK" \
    --out "$ROOT/target/bench" \
    --psql "$PSQL" \
    --pgbench "$PGBENCH" \
    --wrk "$(command -v wrk)" \
    --browsers "$BROWSERS" \
    ${BENCH_PHASES:+--phases "$BENCH_PHASES"} &
BENCH_PID=$!
wait "$BENCH_PID"
