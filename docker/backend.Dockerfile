# The backend: one process serving the REST API and running pytest.
# Built from the repository root: docker build -f docker/backend.Dockerfile .

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p backend \
 && cp target/release/test-executor /usr/local/bin/test-executor

FROM debian:bookworm-slim
# libpq for the database, python3 + pytest for the runs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libpq5 python3 python3-pytest \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/test-executor /usr/local/bin/test-executor
# The sample tests, as the tests root unless a volume replaces them.
COPY sample-tests /srv/tests
ENV BIND_ADDR=0.0.0.0:8080 \
    TESTS_ROOT=/srv/tests \
    PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
CMD ["test-executor"]
