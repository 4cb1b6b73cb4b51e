#!/usr/bin/env bash
# Runs nginx in the foreground in front of the backend: it serves the built
# SPA (frontend/dist) and proxies /api and /metrics.
#
#   scripts/nginx.sh [LISTEN] [BACKEND]
#
#   LISTEN   port or host:port to listen on (default 8000, on 127.0.0.1)
#   BACKEND  the backend's host:port (default $BIND_ADDR or 127.0.0.1:8080)
#
# nginx/nginx.conf is a template; its rendering, pid, logs and temp files
# go under $NGINX_PREFIX (default .local/nginx). DIST overrides the SPA's
# directory. nginx is exec'd: stop it with SIGTERM/SIGQUIT or Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LISTEN="${1:-8000}"
BACKEND="${2:-${BIND_ADDR:-127.0.0.1:8080}}"
PREFIX="${NGINX_PREFIX:-$ROOT/.local/nginx}"
DIST="${DIST:-$ROOT/frontend/dist}"

die() { printf '[nginx] error: %s\n' "$*" >&2; exit 1; }

[[ "$LISTEN" =~ ^[0-9]+$ ]] && LISTEN="127.0.0.1:$LISTEN"
[[ "$LISTEN" =~ ^[][A-Za-z0-9.:-]+:[0-9]+$ ]] || die "bad listen address: $LISTEN"
[[ "$BACKEND" =~ ^[][A-Za-z0-9.:-]+:[0-9]+$ ]] || die "bad backend address: $BACKEND"
[ -f "$DIST/index.html" ] || die "$DIST/index.html is missing: run scripts/frontend-build.sh"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$NGINX" ] || die "nginx not found: run scripts/install-deps.sh run"

mkdir -p "$PREFIX/logs" "$PREFIX/temp"
PREFIX="$(cd "$PREFIX" && pwd)"
esc() { printf '%s' "$1" | sed 's/[&|\\]/\\&/g'; }
sed -e "s|@PREFIX@|$(esc "$PREFIX")|g" \
    -e "s|@LISTEN@|$(esc "$LISTEN")|g" \
    -e "s|@BACKEND@|$(esc "$BACKEND")|g" \
    -e "s|@DIST@|$(esc "$DIST")|g" \
    "$ROOT/nginx/nginx.conf" >"$PREFIX/nginx.conf"

args=(-p "$PREFIX/" -c "$PREFIX/nginx.conf" -e "$PREFIX/logs/error.log")
# As root, nginx's workers run as nobody, who may not read a checkout under
# a private home (/root is 0700): then they stay root.
if [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -r "$DIST/index.html" 2>/dev/null; then
    args+=(-g "user root;")
fi
"$NGINX" "${args[@]}" -t -q || die "nginx rejects $PREFIX/nginx.conf"
printf '[nginx] serving %s on http://%s/ (API: %s)\n' "$DIST" "$LISTEN" "$BACKEND" >&2
exec "$NGINX" "${args[@]}"
