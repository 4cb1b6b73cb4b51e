#!/usr/bin/env bash
# Installs what running, or testing, the service needs, skipping whatever is
# already there. Works as root or through sudo on Debian 12. Each step says
# what it installs and why, once; a step with nothing to do says nothing.
#
#   scripts/install-deps.sh [WHAT]
#
#   run        what `make run` needs: PostgreSQL, libpq, pytest, nginx, the
#              wasm32 target, binaryen (npm) and the SPA tools below
#   run-base   the same without the SPA tools (the quick part of `run`)
#   spa-tools  trunk and wasm-bindgen-cli, compiled from crates.io (the slow
#              part of `run`: no registry reachable here ships their binaries)
#   test       `run` plus what only `make test` needs: Chromium and
#              ChromeDriver, docker-compose and PyYAML, python3-venv, curl,
#              playwright-core (npm)  (the default; `all` is the same)
#   backend    PostgreSQL, libpq and pytest only (scripts/bench.sh)
#
# npm packages go into .local/node; cargo installs into ~/.cargo/bin.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TRUNK_VERSION="0.21.14"
BINARYEN_VERSION="132"
NODE_PREFIX="$ROOT/.local/node"

export PATH="$HOME/.cargo/bin:$PATH"
export PIP_ROOT_USER_ACTION=ignore

log() { printf '[install-deps] %s\n' "$*" >&2; }
die() { printf '[install-deps] error: %s\n' "$*" >&2; exit 1; }

# --- Rust --------------------------------------------------------------------

# The oldest rustc the workspace builds with (rust-version in Cargo.toml).
needed_rust() {
    sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -1
}

# version_lt A B: A < B, comparing dotted numbers.
version_lt() {
    [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]
}

# What a newcomer most often lacks: cargo itself, or a Rust too old for the
# dependencies in Cargo.lock. Each answer is one line that says the fix.
check_rust() {
    if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
        die "cargo not found: install Rust with rustup (https://rustup.rs: curl --proto '=https' -sSf https://sh.rustup.rs | sh), then open a new shell"
    fi
    local need have
    if ! have="$(rustc --version 2>/dev/null)"; then
        command -v rustup >/dev/null 2>&1 ||
            die "rustc does not run: reinstall Rust with rustup (https://rustup.rs)"
        die "rustc does not run (rustup has no default toolchain?): run 'rustup default stable'"
    fi
    need="$(needed_rust)"
    have="$(awk '{print $2}' <<<"$have")"
    have="${have%%-*}"
    if [ -n "$need" ] && version_lt "$have" "$need"; then
        if command -v rustup >/dev/null 2>&1; then
            die "Rust $have is too old: this project needs $need or newer: run 'rustup update stable'"
        fi
        die "Rust $have is too old: this project needs $need or newer: install a newer one with rustup (https://rustup.rs)"
    fi
}

# --- privileges and apt ------------------------------------------------------

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()
fi

APT_UPDATED=0

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Root, or a sudo that can be used; else one line that says what to run.
need_root_for() {
    [ "$(id -u)" -eq 0 ] && return 0
    local fix="as root: apt-get install -y $*"
    [ "${#SUDO[@]}" -gt 0 ] ||
        die "no sudo and not root, and $* must be installed: $fix; then run this again"
    sudo -n true 2>/dev/null && return 0
    [ -t 0 ] ||
        die "sudo needs a password and there is no terminal to ask it on: run 'sudo -v' first, or $fix"
    log "sudo will ask for your password (to install $*)"
    sudo -v || die "sudo refused: $fix; then run this again"
}

# apt_install WHY PKG...: installs those of PKG that are missing, saying
# what and why; refreshes the package lists at most once per invocation.
# Without recommended packages (docker-compose alone would bring a Docker
# engine), unless APT_RECOMMENDS=1.
apt_install() {
    local why="$1" missing=() p
    shift
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found: install ${missing[*]} by hand (they are $why)"
    need_root_for "${missing[@]}"
    if [ "$APT_UPDATED" -eq 0 ]; then
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}: $why"
    local opts=(-y -qq)
    [ "${APT_RECOMMENDS:-0}" = 1 ] || opts+=(--no-install-recommends)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install "${opts[@]}" "${missing[@]}" >&2
}

# --- what running needs --------------------------------------------------------

pip_install_pytest() {
    local out
    if out="$(python3 -m pip install -q pytest 2>&1)"; then
        return 0
    fi
    if grep -q 'externally-managed-environment' <<<"$out"; then
        # PEP 668 (Debian's own python3): pip refuses without this flag.
        if [ "$(id -u)" -eq 0 ]; then
            python3 -m pip install -q --break-system-packages pytest
        else
            python3 -m pip install -q --user --break-system-packages pytest
        fi
    elif [ "$(id -u)" -ne 0 ]; then
        python3 -m pip install -q --user pytest
    else
        printf '%s\n' "$out" >&2
        return 1
    fi
}

# The server, libpq and a C toolchain for the backend, python3 and pytest
# for the runs.
install_backend() {
    local pkgs=()
    # Any installed major version of the server will do.
    ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs+=(postgresql)
    # pg_config alone may come from postgresql-common, without libpq.so.
    # OpenSSL's headers: webhooks are sent over https.
    pkgs+=(libpq-dev libssl-dev)
    command -v cc >/dev/null 2>&1 || pkgs+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
    command -v python3 >/dev/null 2>&1 || pkgs+=(python3 python3-pip)
    apt_install "the database server (a cluster of this checkout's own), libpq, OpenSSL's headers and a C compiler for the backend, python3 for the runs" "${pkgs[@]}"

    if ! python3 -c 'import pytest' >/dev/null 2>&1; then
        python3 -m pip --version >/dev/null 2>&1 ||
            apt_install "pip, to install pytest" python3-pip
        log "pip install pytest: every run is 'python3 -m pytest'"
        pip_install_pytest
        python3 -c 'import pytest' ||
            die "pytest is still not importable by python3"
    fi
}

npm_pkg_version() {
    local pj="$NODE_PREFIX/node_modules/$1/package.json"
    [ -f "$pj" ] || return 0
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pj" | head -1
}

# npm_install WHY SPEC...: into .local/node (npm's cache stays in ~/.npm).
npm_install() {
    local why="$1"
    shift
    command -v npm >/dev/null 2>&1 || apt_install "Node.js's npm, to install $*" nodejs npm
    mkdir -p "$NODE_PREFIX"
    log "npm install $* into .local/node: $why"
    npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error "$@" >&2
}

wasm_target_installed() {
    [ -d "$(rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown" ]
}

# nginx, the wasm32 target and binaryen: the quick part of the SPA's needs.
install_spa_base() {
    local pkgs=()
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || pkgs+=(nginx)
    apt_install "the web server that serves the web UI and proxies /api to the backend" "${pkgs[@]}"

    if ! wasm_target_installed; then
        command -v rustup >/dev/null 2>&1 ||
            die "the wasm32-unknown-unknown target is missing and there is no rustup to add it: install Rust with rustup (https://rustup.rs)"
        log "rustup target add wasm32-unknown-unknown: the web UI is Rust compiled to WebAssembly"
        rustup target add wasm32-unknown-unknown >&2
    fi

    case "$(npm_pkg_version binaryen)" in
        "$BINARYEN_VERSION".*) ;;
        *) npm_install "its wasm-opt makes the web UI's wasm about a third smaller (Debian's binaryen is too old to read it)" \
            "binaryen@$BINARYEN_VERSION" ;;
    esac
}

# --- the SPA tools: compiled, the slow part ------------------------------------

# The wasm-bindgen version pinned by Cargo.lock (empty if none).
locked_wasm_bindgen() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
        Cargo.lock 2>/dev/null || true
}

trunk_ok() {
    command -v trunk >/dev/null 2>&1 &&
        [ "$(trunk --version 2>/dev/null | awk '{print $2}')" = "$TRUNK_VERSION" ]
}

wasm_bindgen_version() { wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true; }

# wait_for_other PATTERN: another shell may be compiling the same tool:
# wait for it rather than start a second build.
wait_for_other() {
    if pgrep -f "(^|/)cargo install $1" >/dev/null 2>&1; then
        log "a 'cargo install $1' is already running (another shell?): waiting for it"
        while pgrep -f "(^|/)cargo install $1" >/dev/null 2>&1; do sleep 5; done
    fi
}

# No registry reachable from our machines ships these as binaries (their
# prebuilt releases are not on crates.io, PyPI, npm or Debian), so they are
# compiled, but cheaply: their own release profile asks for fat LTO and one
# codegen unit, and at opt-level 3 trunk alone costs 13 CPU-minutes here.
# Unoptimised (opt-level 0, no LTO) both together cost 7 CPU-minutes, and a
# build of the SPA takes the same time with them (they only orchestrate
# cargo and wasm-opt, and wasm-bindgen spends under a second on our wasm).
# Both go without their default features (TLS for `trunk serve --tls`,
# downloads and trunk's update check on crates.io; wasm-bindgen's test
# runner only talks to a local ChromeDriver), which an offline build never
# uses: no TLS stack to compile twice. They are built one after the other
# in one target directory, so that what they have in common is compiled
# once.
cargo_install() {
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
        CARGO_PROFILE_RELEASE_LTO=false \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        CARGO_TARGET_DIR="$ROOT/target/tools" \
        cargo install "$@"
}

install_trunk() {
    trunk_ok && return 0
    wait_for_other trunk
    trunk_ok && return 0
    log "cargo install trunk $TRUNK_VERSION: builds the web UI (compiled from crates.io: a few minutes)"
    cargo_install --quiet trunk --version "$TRUNK_VERSION" --locked --no-default-features
}

install_wasm_bindgen() {
    local want
    want="$(locked_wasm_bindgen)"
    [ -n "$want" ] || return 0
    [ "$(wasm_bindgen_version)" = "$want" ] && return 0
    wait_for_other wasm-bindgen-cli
    [ "$(wasm_bindgen_version)" = "$want" ] && return 0
    log "cargo install wasm-bindgen-cli $want: trunk needs the exact wasm-bindgen of Cargo.lock (compiled from crates.io: a couple of minutes)"
    # Not --locked: one of its pinned dependencies is no longer served.
    cargo_install --quiet wasm-bindgen-cli --version "$want" --no-default-features
}

install_spa_tools() {
    install_trunk
    install_wasm_bindgen
}

# --- what only the tests need ------------------------------------------------

install_test_only() {
    local pkgs=()
    command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || pkgs+=(chromium-driver)
    # With its recommended packages (fonts among them) for the screenshots.
    APT_RECOMMENDS=1 apt_install "the browser and its driver, for the SPA's wasm tests and the end-to-end browser test" "${pkgs[@]}"

    pkgs=()
    command -v docker-compose >/dev/null 2>&1 || pkgs+=(docker-compose)
    python3 -c 'import yaml' >/dev/null 2>&1 || /usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 ||
        pkgs+=(python3-yaml)
    apt_install "scripts/docker-check.sh parses the compose files with them (no Docker engine needed)" "${pkgs[@]}"

    # Debian's python3 needs python3-venv (ensurepip) for `python3 -m venv`.
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 ||
        apt_install "scripts/api-fuzz.sh installs schemathesis into a venv of its own" python3-venv

    command -v curl >/dev/null 2>&1 ||
        apt_install "the API fuzzing and browser test scripts probe the service with it" curl

    [ -n "$(npm_pkg_version playwright-core)" ] ||
        npm_install "drives Debian's Chromium in the end-to-end browser test" playwright-core
}

# --- main ----------------------------------------------------------------------

what="${1:-test}"
case "$what" in
    run) check_rust; install_backend; install_spa_base; install_spa_tools ;;
    run-base) check_rust; install_backend; install_spa_base ;;
    spa-tools) check_rust; install_spa_tools ;;
    test | all) check_rust; install_backend; install_spa_base; install_spa_tools; install_test_only ;;
    backend) install_backend ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "usage: $0 [run|run-base|spa-tools|test|backend]" ;;
esac
log "$what: everything is in place"
