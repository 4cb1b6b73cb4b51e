#!/usr/bin/env bash
# Runs tests on the test executor from a CI job: queues a run, streams its
# log to stdout as it comes, and exits 0 only if the run ends in `success`.
# Needs only bash and python3 (its standard library); copy it anywhere.
#
#   EXECUTOR_URL=http://executor:8080 EXECUTOR_TOKEN=te_… \
#     scripts/ci-run.sh -e 7 smoke/test_fast.py api
#
# EXECUTOR_TOKEN is a personal API token (the web UI's "My tokens", or
# POST /api/tokens) of a member or admin; the run is theirs. Keep it in the
# CI system's secret store: this script never prints it.
#
# Options (each also from an environment variable):
#   --url URL             the service ($EXECUTOR_URL; http://127.0.0.1:8080)
#   -u, --user NAME       who runs it ($EXECUTOR_USER): must be the token's
#                         user; left out, the token's user
#   -e, --environment ID  environment 1..100 ($EXECUTOR_ENVIRONMENT; 1)
#   --junit FILE          also write the run's JUnit XML report to FILE
#   --timeout SECS        cancel the run if it has not ended by then
#   --no-color            strip pytest's colours from the log
#   PATH...               test files or directories under the tests root,
#                         optionally with ::test selectors
#
# Exit status: 0 success, 1 failed (tests failed), 2 error (no tests, a
# collection error, a time-out...), 3 cancelled, 4 this script could not
# get an answer (service unreachable, request refused, --timeout). The
# run's final status and reason are printed to stderr. Ctrl-C or a CI job
# being cancelled (SIGINT/SIGTERM) cancels the run too.
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
command -v python3 >/dev/null 2>&1 || { echo "ci-run: python3 is needed" >&2; exit 4; }
exec python3 - "$@" <<'PYTHON'
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request

EXIT = {"success": 0, "failed": 1, "error": 2, "cancelled": 3}
TROUBLE = 4


def fail(message):
    print(f"ci-run: {message}", file=sys.stderr)
    sys.exit(TROUBLE)


def usage(message):
    print(f"ci-run: {message}\nusage: ci-run.sh [--url URL] [-u USER] [-e ENVIRONMENT_ID] "
          "[--junit FILE] [--timeout SECS] [--no-color] PATH...", file=sys.stderr)
    sys.exit(TROUBLE)


def parse_args(argv):
    opts = {
        "url": os.environ.get("EXECUTOR_URL") or "http://127.0.0.1:8080",
        "user": os.environ.get("EXECUTOR_USER") or None,
        "environment": os.environ.get("EXECUTOR_ENVIRONMENT") or "1",
        "junit": None,
        "timeout": None,
        "color": True,
        "paths": [],
    }
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            opts["paths"].extend(args)
            break
        if arg in ("-h", "--help"):
            usage("see ci-run.sh --help")
        if arg == "--no-color":
            opts["color"] = False
            continue
        names = {"--url": "url", "-u": "user", "--user": "user", "-e": "environment",
                 "--environment": "environment", "--junit": "junit", "--timeout": "timeout"}
        key, value = arg, None
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
        if key in names:
            if value is None:
                if not args:
                    usage(f"{key} needs a value")
                value = args.pop(0)
            opts[names[key]] = value
        elif arg.startswith("-") and arg != "-":
            usage(f"unknown option {arg}")
        else:
            opts["paths"].append(arg)
    if not opts["paths"]:
        usage("name at least one test file or directory")
    try:
        opts["environment"] = int(opts["environment"])
    except ValueError:
        usage(f"the environment must be a number, not {opts['environment']!r}")
    if opts["timeout"] is not None:
        try:
            opts["timeout"] = float(opts["timeout"])
        except ValueError:
            usage(f"--timeout must be a number of seconds, not {opts['timeout']!r}")
    opts["url"] = opts["url"].rstrip("/")
    return opts


OPTS = parse_args(sys.argv[1:])
TOKEN = (os.environ.get("EXECUTOR_TOKEN") or "").strip()


def request(method, path, body=None, headers=None, retry_for=30.0):
    """(status, headers, bytes); retries network errors for `retry_for` s."""
    data = None
    headers = dict(headers or {})
    if TOKEN:
        headers["Authorization"] = f"Bearer {TOKEN}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    deadline = time.monotonic() + retry_for
    while True:
        req = urllib.request.Request(OPTS["url"] + path, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers, answer.read()
        except (urllib.error.URLError, OSError) as e:
            if time.monotonic() >= deadline:
                fail(f"{method} {OPTS['url']}{path}: {getattr(e, 'reason', e)}")
            time.sleep(1)


def error_text(raw):
    try:
        error = json.loads(raw)["error"]
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace")[:500]
    fields = error.get("fields") or {}
    extra = "".join(f"\n  {name}: {why}" for name, why in fields.items())
    return f"{error.get('message')}{extra}"


def get_json(path):
    status, _, raw = request("GET", path)
    if status != 200:
        fail(f"GET {path}: {status} {error_text(raw)}")
    return json.loads(raw)


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
run_id = None


def cancel(reason):
    if run_id is not None:
        print(f"\nci-run: {reason}: cancelling run {run_id}", file=sys.stderr)
        request("POST", f"/api/runs/{run_id}/cancel", retry_for=5)


def on_signal(signum, _frame):
    cancel(f"got signal {signum}")
    sys.exit(128 + signum)


signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGTERM, on_signal)

new_run = {"environment_id": OPTS["environment"], "paths": OPTS["paths"]}
if OPTS["user"]:
    new_run["username"] = OPTS["user"]
status, _, raw = request("POST", "/api/runs", new_run)
if status == 401:
    fail(f"the service wants credentials: set EXECUTOR_TOKEN to an API token ({error_text(raw)})")
if status != 201:
    fail(f"the run was refused ({status}): {error_text(raw)}")
run = json.loads(raw)
run_id = run["id"]
print(f"ci-run: run {run_id} queued on environment {run['environment_id']} "
      f"({OPTS['url']}/api/runs/{run_id})", file=sys.stderr)

# The log, by byte offset, until the run is finished and all of it is here.
# Each poll sends the last ETag, so an idle wait costs the service a 304.
started = time.monotonic()
offset, etag, pause = 0, None, 0.2
out = sys.stdout
while True:
    if OPTS["timeout"] is not None and time.monotonic() - started > OPTS["timeout"]:
        cancel(f"--timeout {OPTS['timeout']:g} s reached")
        print(f"ci-run: run {run_id} did not end within {OPTS['timeout']:g} s", file=sys.stderr)
        sys.exit(TROUBLE)
    path = f"/api/runs/{run_id}/log?offset={offset}"
    status, headers, raw = request("GET", path, headers={"If-None-Match": etag} if etag else None)
    if status == 304:
        time.sleep(pause)
        pause = min(pause * 1.5, 1.0)
        continue
    if status != 200:
        fail(f"GET {path}: {status} {error_text(raw)}")
    chunk = json.loads(raw)
    content = chunk["content"]
    if content:
        out.write(content if OPTS["color"] else ANSI.sub("", content))
        out.flush()
        pause = 0.2
    if chunk["complete"]:
        break
    if chunk["next_offset"] != offset:
        offset, etag = chunk["next_offset"], None
    else:
        etag = headers.get("ETag")
        time.sleep(pause)
        pause = min(pause * 1.5, 1.0)

run = get_json(f"/api/runs/{run_id}")
summary = run.get("summary") or {}
counts = ", ".join(f"{summary[k]} {k}" for k in ("passed", "failed", "skipped", "errors")
                   if summary.get(k))
took = f" in {run['duration_ms'] / 1000:.1f} s" if run.get("duration_ms") is not None else ""
reason = f" ({run['status_reason']})" if run.get("status_reason") else ""
print(f"ci-run: run {run_id} {run['status']}{reason}{': ' + counts if counts else ''}{took}",
      file=sys.stderr)

if OPTS["junit"]:
    status, _, raw = request("GET", f"/api/runs/{run_id}/junit.xml")
    if status == 200:
        with open(OPTS["junit"], "wb") as report:
            report.write(raw)
    else:
        print(f"ci-run: no JUnit report: {error_text(raw)}", file=sys.stderr)

sys.exit(EXIT.get(run["status"], TROUBLE))
PYTHON
