# syntax=docker/dockerfile:1
# The web UI: the SPA built by trunk (scripts/frontend-build.sh, as
# `make build` does it), served by nginx, which also proxies /api and
# /metrics to the backend (docker/nginx.conf, docker/upstream.conf).
# Built from the repository root (docker-compose.yml does):
#   docker build -f docker/web.Dockerfile -t test-executor-web .

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
# The versions scripts/install-deps.sh installs.
ARG TRUNK_VERSION=0.21.14
ARG BINARYEN_VERSION=132
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    rustup target add wasm32-unknown-unknown \
 && cargo install trunk --version "$TRUNK_VERSION" --locked
WORKDIR /src
# wasm-bindgen-cli must be the version Cargo.lock pins: installed in a
# layer of its own, rebuilt only when Cargo.lock changes.
COPY Cargo.lock ./
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)" \
 && cargo install wasm-bindgen-cli --version "$version"
# wasm-opt from npm, where scripts/frontend-build.sh looks for it.
RUN npm install --prefix /src/.local/node --no-audit --no-fund "binaryen@$BINARYEN_VERSION"
COPY Cargo.toml ./
COPY shared shared
COPY backend backend
COPY frontend frontend
COPY scripts/frontend-build.sh scripts/frontend-build.sh
# Trunk builds offline (frontend/Trunk.toml): the crates are fetched first.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target/wasm \
    cargo fetch --locked \
 && scripts/frontend-build.sh

FROM nginx:1.27-bookworm
# conf.d/*.conf is read in name order: the upstream comes first.
COPY docker/upstream.conf /etc/nginx/conf.d/backend-upstream.conf
COPY docker/nginx.conf /etc/nginx/conf.d/default.conf
COPY --from=build /src/frontend/dist /usr/share/nginx/html
EXPOSE 80
CMD ["nginx", "-g", "daemon off;"]
