# The web UI: the SPA built by trunk, served by nginx, which also proxies
# /api and /metrics to the backend.
# Built from the repository root: docker build -f docker/web.Dockerfile .

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown \
 && cargo install trunk --version 0.21.14 --locked
# wasm-opt from npm: Debian's binaryen is too old for current wasm.
RUN npm install --prefix /opt/node --no-audit --no-fund binaryen@132
ENV PATH=/opt/node/node_modules/.bin:$PATH
WORKDIR /src
# wasm-bindgen-cli must be the version Cargo.lock pins.
COPY Cargo.lock ./
RUN version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)" \
 && cargo install wasm-bindgen-cli --version "$version"
COPY . .
RUN cd frontend && trunk build --release index.html

FROM nginx:1.27-bookworm
COPY docker/nginx.conf /etc/nginx/conf.d/default.conf
COPY --from=build /src/frontend/dist /usr/share/nginx/html
EXPOSE 80
