# syntax=docker/dockerfile:1
# The backend: one process serving the REST API and running pytest.
# Built from the repository root (docker-compose.yml does):
#   docker build -f docker/backend.Dockerfile -t test-executor-backend .

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The workspace: every member's manifest must be there, and the migrations
# are built into the binary.
COPY Cargo.toml Cargo.lock ./
COPY shared shared
COPY backend backend
COPY frontend frontend
COPY migrations migrations
# Cached between builds (BuildKit): the crates.io downloads and the
# target directory, so a change to one file rebuilds only what it touches.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p backend \
 && cp target/release/test-executor target/release/test-executor-supervise /usr/local/bin/

FROM debian:bookworm-slim
# libpq for the database; OpenSSL for webhooks over https; python3 and
# pytest for the runs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libpq5 libssl3 python3 python3-pytest \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/test-executor /usr/local/bin/test-executor-supervise /usr/local/bin/
# The sample tests, the tests root unless a volume replaces them.
COPY sample-tests /srv/tests
# Tests run as `tests`, never as root (RUN_AS_USER): they cannot read the
# service's environment (the database password) or memory, signal it, or
# change what only root may. The service stays root to switch to that
# user and to kill whatever the tests leave behind. The tests root must be
# readable by `tests` (a mounted ./sample-tests usually is); uploads are
# written readable by all.
RUN useradd --system --create-home --home-dir /home/tests --shell /usr/sbin/nologin tests
ENV BIND_ADDR=0.0.0.0:8080 \
    TESTS_ROOT=/srv/tests \
    RUN_AS_USER=tests \
    PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/health', timeout=2)"]
CMD ["test-executor"]
