#!/usr/bin/env bash
# Builds the SPA into frontend/dist with `trunk build --release`, offline:
# trunk never downloads a tool. wasm-opt is binaryen 132 from
# .local/node/node_modules/.bin when present; without it the wasm is
# built unoptimised by wasm-opt (about half again as big). Prints the
# size of the wasm, raw and gzipped.
#
#   scripts/frontend-build.sh [--if-changed]
#
# --if-changed (make run): do nothing when frontend/dist was built, the same
# way, after the last change to frontend/, shared/, Cargo.toml, Cargo.lock
# or this script. A build of an unchanged SPA still takes seconds (trunk
# always runs wasm-bindgen and wasm-opt again).
#
# Environment: CARGO_TARGET_DIR (default target/wasm, apart from the host
# builds so neither invalidates the other or blocks on its lock);
# WASM_GZ_BUDGET (default 400000): warn when the gzipped wasm is larger. The
# app with every page is 388 717 bytes, most of it the pages themselves and
# yew's code generated for each (no one function is over 27 KB raw), so
# the budget is a tripwire for growth, not a target.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FRONTEND="$ROOT/frontend"
NODE_BIN="$ROOT/.local/node/node_modules/.bin"

log() { printf '[frontend-build] %s\n' "$*" >&2; }
die() { printf '[frontend-build] error: %s\n' "$*" >&2; exit 1; }

export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/wasm}"
WASM_GZ_BUDGET="${WASM_GZ_BUDGET:-400000}"
# Size over speed for every crate of the wasm (the workspace profile only
# makes the frontend crate itself opt-level z); this target dir holds
# nothing else, so the host builds keep their own profile. About a quarter
# smaller than opt-level 3 dependencies with thin LTO.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
export CARGO_PROFILE_RELEASE_LTO=fat
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
export CARGO_PROFILE_RELEASE_PANIC=abort

IF_CHANGED=0
case "${1:-}" in
    --if-changed) IF_CHANGED=1 ;;
    "") ;;
    *) die "usage: $0 [--if-changed]" ;;
esac
# What the last build was made with; its time is when that build started.
STAMP="$ROOT/.local/spa-built"

command -v trunk >/dev/null 2>&1 || die "trunk not found: run scripts/install-deps.sh spa-tools"

# Trunk insists on the exact wasm-bindgen of Cargo.lock (and, offline, can
# not fetch it): say so plainly instead of trunk's longer story.
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
[ "$have" = "$want" ] ||
    die "wasm-bindgen $want is needed (found: ${have:-none}): cargo install wasm-bindgen-cli --version $want"
grep -q "wasm_bindgen = \"$want\"" "$FRONTEND/Trunk.toml" ||
    die "frontend/Trunk.toml must name wasm_bindgen = \"$want\" (Cargo.lock's version)"

cd "$FRONTEND"
target="index.html"
cleanup() { rm -f "$FRONTEND/.index.no-wasm-opt.html"; }
trap cleanup EXIT
WASM_OPT=0
if [ -x "$NODE_BIN/wasm-opt" ] && "$NODE_BIN/wasm-opt" --version 2>/dev/null | grep -q 'version_132'; then
    WASM_OPT=1
fi
# How this build is made: a change of tools means building again.
HOW="wasm-bindgen $want, wasm-opt $WASM_OPT, $(trunk --version 2>/dev/null)"

if [ "$IF_CHANGED" -eq 1 ] && [ -f "$STAMP" ] && [ -f dist/index.html ] &&
    [ "$(cat "$STAMP")" = "$HOW" ] &&
    [ -z "$(find "$FRONTEND" "$ROOT/shared" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" \
        "$ROOT/scripts/frontend-build.sh" -path "$FRONTEND/dist" -prune -o \
        -type f -newer "$STAMP" -print -quit)" ]; then
    log "frontend/dist is up to date"
    exit 0
fi

if [ "$WASM_OPT" -eq 1 ]; then
    export PATH="$NODE_BIN:$PATH"
    log "wasm-opt: $("$NODE_BIN/wasm-opt" --version)"
else
    # Another wasm-opt on PATH (Debian's 108 cannot read today's wasm) must
    # not be picked either: build from a copy of index.html with it off.
    log "binaryen 132 not found in .local/node: building without wasm-opt"
    target=".index.no-wasm-opt.html"
    sed 's/data-wasm-opt="[^"]*"/data-wasm-opt="0"/' index.html >"$target"
fi

mkdir -p "$ROOT/.local"
rm -f "$STAMP"
printf '%s\n' "$HOW" >"$STAMP.new"

log "trunk build --release (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
# Offline and --locked come from frontend/Trunk.toml. Flags take optional
# values (a bare --release would swallow the target): hence --release=true.
# The `spa` profile of Cargo.toml: built for size, apart from the backend.
TRUNK_BUILD_CARGO_PROFILE=spa trunk build --release=true "$target"

shopt -s nullglob
wasm=(dist/*.wasm)
[ "${#wasm[@]}" -eq 1 ] || die "expected one .wasm in frontend/dist, found ${#wasm[@]}"
raw=$(wc -c <"${wasm[0]}")
gz=$(gzip -9 -c "${wasm[0]}" | wc -c)
js=(dist/*.js)
js_gz=0
[ "${#js[@]}" -gt 0 ] && js_gz=$(cat "${js[@]}" | gzip -9 | wc -c)
printf '[frontend-build] built frontend/dist: %s is %d KiB raw, %d KiB gzipped (%d bytes; + %d KiB gzipped JS)\n' \
    "$(basename "${wasm[0]}")" "$((raw / 1024))" "$((gz / 1024))" "$gz" "$((js_gz / 1024))"
# The size the SPA keeps to: a warning, not a failure, so that a build for
# a quick look still succeeds.
[ "$gz" -le "$WASM_GZ_BUDGET" ] ||
    log "warning: the gzipped wasm is $gz bytes, over the budget of $WASM_GZ_BUDGET"
mv "$STAMP.new" "$STAMP"
