# Test executor: build, run and test.
#
#   make run    install what running needs (if missing), build, run the
#               backend + web UI; its data lives in a durable PostgreSQL
#               cluster of this checkout (scripts/pg.sh --run)
#   make test   install what testing needs too, then the whole check: fmt,
#               clippy, cargo test, API fuzzing, Docker files, browser test
#
# Without DATABASE_URL, the tests use a throwaway project-local PostgreSQL
# (scripts/pg.sh), apart from the one make run keeps its runs in.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export PATH := $(HOME)/.cargo/bin:$(CURDIR)/.local/node/node_modules/.bin:$(PATH)
export NODE_PATH := $(CURDIR)/.local/node/node_modules

# The SPA's build and browser test, once they exist.
SPA_BUILD := $(wildcard scripts/frontend-build.sh)

# The SPA's unit tests run in wasm (node by default, or headless Chromium).
WASM_TEST = CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	CHROMEDRIVER=/usr/bin/chromedriver \
	cargo test -p frontend --target wasm32-unknown-unknown

# DATABASE_URL as given, else the project-local cluster (started if needed);
# a plain assignment, so that a cluster that fails to start stops make.
WITH_DB = DATABASE_URL="$${DATABASE_URL:-$$(scripts/pg.sh start)}" && export DATABASE_URL &&

.PHONY: help run test frontend-test deps deps-run build fmt fmt-check lint clippy bench pg pg-stop clean-pg

help:
	@echo "make run       build and run the service (web UI on http://127.0.0.1:8000/)"
	@echo "make test      fmt check, clippy, cargo test, API fuzzing (schemathesis), Docker check,"
	@echo "               SPA unit tests, browser end-to-end test"
	@echo "make fmt       format the code"
	@echo "make lint      fmt check + clippy"
	@echo "make frontend-test  the SPA's unit tests (wasm)"
	@echo "make bench     run the benchmark (scripts/bench.sh)"
	@echo "make deps      install what make run and make test need (make deps-run: make run's only)"
	@echo "make build     release build of the backend (and the SPA)"
	@echo "make pg        start the throwaway test PostgreSQL and print its URL (make run has its own)"
	@echo "make pg-stop   stop it"
	@echo "make clean-pg  stop it and delete its data"

# Ctrl-C (exit 130) is the normal way to stop it.
run:
	scripts/run.sh || test $$? -eq 130

test:
	scripts/install-deps.sh test
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings
	$(if $(SPA_BUILD),cargo clippy -p frontend --target wasm32-unknown-unknown --all-targets -- -D warnings)
	$(WITH_DB) cargo test
	scripts/test-run-cluster.sh
	$(WITH_DB) scripts/api-fuzz.sh
	scripts/docker-check.sh
	$(if $(SPA_BUILD),$(WASM_TEST))
	@if [ -x scripts/e2e.sh ]; then \
		echo "scripts/e2e.sh"; \
		scripts/e2e.sh; \
	else \
		echo "no scripts/e2e.sh yet: no browser test"; \
	fi

frontend-test:
	$(WASM_TEST)

deps:
	scripts/install-deps.sh test

deps-run:
	scripts/install-deps.sh run

build:
	cargo build --release -p backend
	@if [ -x scripts/frontend-build.sh ]; then scripts/frontend-build.sh; fi

fmt:
	cargo fmt --all

fmt-check:
	cargo fmt --all --check

clippy:
	cargo clippy --all-targets -- -D warnings
	$(if $(SPA_BUILD),cargo clippy -p frontend --target wasm32-unknown-unknown --all-targets -- -D warnings)

lint: fmt-check clippy

bench:
	@if [ -x scripts/bench.sh ]; then \
		$(WITH_DB) scripts/bench.sh; \
	else \
		echo "there is no benchmark yet (scripts/bench.sh)"; \
	fi

pg:
	@scripts/pg.sh start

pg-stop:
	@scripts/pg.sh stop

clean-pg:
	@scripts/pg.sh clean
