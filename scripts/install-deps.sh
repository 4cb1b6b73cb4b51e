#!/usr/bin/env bash
# Installs what building, running and testing the service needs, skipping
# whatever is already there. Works as root or through sudo on Debian 12.
#
#   scripts/install-deps.sh [backend|frontend|all]     (default: all)
#
# backend:  PostgreSQL, libpq, python3 and pytest (the runner spawns pytest),
#           python3-venv (schemathesis for scripts/api-fuzz.sh installs into
#           a venv of its own), docker-compose and PyYAML (scripts/docker-check.sh)
# frontend: the wasm32 target, trunk, wasm-bindgen-cli (the version in
#           Cargo.lock), nginx, Chromium + ChromeDriver, and binaryen /
#           playwright-core from npm under .local/node
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

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()
fi

# --- apt -------------------------------------------------------------------

APT_UPDATED=0

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# apt_install PKG...: installs those of PKG that are missing; refreshes the
# package lists at most once per invocation, and only when needed.
apt_install() {
    local missing=() p
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found: install ${missing[*]} by hand"
    if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
        die "need root or sudo to install: ${missing[*]}"
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q "${missing[@]}" >&2
}

# --- backend ---------------------------------------------------------------

pip_install_pytest() {
    local out
    if out="$(python3 -m pip install -q pytest 2>&1)"; then
        return 0
    fi
    if grep -q 'externally-managed-environment' <<<"$out"; then
        # PEP 668 (Debian's own python3): pip refuses without this flag.
        log "python3 is externally managed: retrying with --break-system-packages"
        if [ "$(id -u)" -eq 0 ]; then
            python3 -m pip install -q --break-system-packages pytest
        else
            python3 -m pip install -q --user --break-system-packages pytest
        fi
    elif [ "$(id -u)" -ne 0 ]; then
        log "pip install failed; retrying with --user"
        python3 -m pip install -q --user pytest
    else
        printf '%s\n' "$out" >&2
        return 1
    fi
}

install_backend() {
    local pkgs=()
    # Any installed major version of the server will do.
    if ! ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        pkgs+=(postgresql)
    fi
    # apt_install skips it when present (pg_config alone may come from
    # postgresql-common, without the headers and libpq.so).
    pkgs+=(libpq-dev)
    command -v cc >/dev/null 2>&1 || pkgs+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
    command -v python3 >/dev/null 2>&1 || pkgs+=(python3 python3-pip)
    command -v curl >/dev/null 2>&1 || pkgs+=(curl)
    # The compose check: docker-compose parses the files, PyYAML (for
    # Debian's python3) reads what it says; no Docker engine needed.
    command -v docker-compose >/dev/null 2>&1 || pkgs+=(docker-compose)
    python3 -c 'import yaml' >/dev/null 2>&1 || /usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 ||
        pkgs+=(python3-yaml)
    if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; fi
    # Debian's python3 needs python3-venv (ensurepip) for `python3 -m venv`.
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt_install python3-venv
    fi

    if ! python3 -c 'import pytest' >/dev/null 2>&1; then
        if ! python3 -m pip --version >/dev/null 2>&1; then
            apt_install python3-pip
        fi
        log "pip install pytest"
        pip_install_pytest
        python3 -c 'import pytest' ||
            die "pytest is still not importable by python3"
    fi
}

# --- frontend --------------------------------------------------------------

# The wasm-bindgen version pinned by Cargo.lock (empty if none).
locked_wasm_bindgen() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
        Cargo.lock 2>/dev/null || true
}

trunk_ok() {
    command -v trunk >/dev/null 2>&1 &&
        [ "$(trunk --version 2>/dev/null | awk '{print $2}')" = "$TRUNK_VERSION" ]
}

install_trunk() {
    trunk_ok && return 0
    # A build already under way (another shell): wait for it, never start a
    # second one (each peaks at about 2 GB and uses both cores).
    if pgrep -f '(^|/)cargo install trunk' >/dev/null 2>&1; then
        log "a 'cargo install trunk' is already running: waiting for it"
        while pgrep -f '(^|/)cargo install trunk' >/dev/null 2>&1; do sleep 5; done
        trunk_ok && return 0
    fi
    log "cargo install trunk $TRUNK_VERSION (several minutes)"
    cargo install trunk --version "$TRUNK_VERSION" --locked
}

install_wasm_bindgen() {
    local want have
    want="$(locked_wasm_bindgen)"
    if [ -z "$want" ]; then
        log "Cargo.lock names no wasm-bindgen yet: skipping wasm-bindgen-cli"
        return 0
    fi
    have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
    [ "$have" = "$want" ] && return 0
    if pgrep -f '(^|/)cargo install wasm-bindgen-cli' >/dev/null 2>&1; then
        log "a 'cargo install wasm-bindgen-cli' is already running: waiting for it"
        while pgrep -f '(^|/)cargo install wasm-bindgen-cli' >/dev/null 2>&1; do sleep 5; done
        have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
        [ "$have" = "$want" ] && return 0
    fi
    log "cargo install wasm-bindgen-cli $want (a couple of minutes)"
    # Not --locked: one of its pinned dependencies is no longer served.
    cargo install wasm-bindgen-cli --version "$want"
}

npm_pkg_version() {
    local pj="$NODE_PREFIX/node_modules/$1/package.json"
    [ -f "$pj" ] || return 0
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pj" | head -1
}

install_node_packages() {
    local want=()
    case "$(npm_pkg_version binaryen)" in
        "$BINARYEN_VERSION".*) ;;
        *) want+=("binaryen@$BINARYEN_VERSION") ;;
    esac
    [ -n "$(npm_pkg_version playwright-core)" ] || want+=(playwright-core)
    if [ "${#want[@]}" -eq 0 ]; then return 0; fi
    if ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    mkdir -p "$NODE_PREFIX"
    log "npm install ${want[*]} into .local/node"
    npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error "${want[@]}" >&2
}

install_frontend() {
    local pkgs=()
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || pkgs+=(nginx)
    command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || pkgs+=(chromium-driver)
    command -v curl >/dev/null 2>&1 || pkgs+=(curl)
    if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; fi

    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        log "rustup target add wasm32-unknown-unknown"
        rustup target add wasm32-unknown-unknown
    fi
    install_node_packages
    install_trunk
    install_wasm_bindgen
}

# --- main ------------------------------------------------------------------

what="${1:-all}"
case "$what" in
    backend) install_backend ;;
    frontend) install_frontend ;;
    all) install_backend; install_frontend ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "usage: $0 [backend|frontend|all]" ;;
esac
log "$what: everything is in place"
