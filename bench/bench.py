#!/usr/bin/env python3
"""The benchmark suite of issue 7, driven by scripts/bench.sh.

Starts its own backends (one per phase, each on a fresh database in the
Postgres server of --admin-url), drives load with wrk and pgbench, and
prints one table: every figure next to its target. Python standard library
only. Everything it starts is stopped in `finally` blocks; all traffic is
on 127.0.0.1.

Phases (each figure is the median over --reps repetitions unless said):
  dispatch   POST on an idle environment -> the test process exists; and
             a process started straight from here, the floor under it
  overhead   50 runs of a one-test file through the service vs 50 direct
             pytest calls, interleaved in blocks; hand-off gaps from the
             same runs
  runlist    100 000 runs; GET /api/runs?per_page=50, wrk -c32; ETag/304;
             then the same SQL through pgbench -c32 (database share)
  drain      1 000 runs over 100 environments, MAX_PARALLEL_RUNS=2
  biglog     one test printing 200 000 lines; /api/health p99 meanwhile
  browsers   1 000 simulated browsers ETag-polling the run list, a run and
             its log once a second for 60 s while 4 runs stream their logs
  flood      20 expensive requests at once, over and over, for 20 s, while
             4 runs go: the runs must not notice
  instances  three backends on one database drain 3 000 runs over 100
             environments, MAX_PARALLEL_RUNS=2 each; dispatch across them
  browser    headless Chromium on the SPA: "Start run" -> first log line,
             a test's verdict -> its row in the run page's table
  scale      (not in the default set) 1 000 000 runs, 20 000 000 case
             rows: run list while runs go, histories, insights, health,
             disk cost per run and per case at two sizes
  memory     backend RSS, sampled every 50 ms in every phase
  spa        frontend/dist/*.wasm, gzipped
"""

import argparse
import datetime
import glob
import gzip
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

# The benchmark speaks to each backend as an admin, with a token of this
# run's own (ADMIN_TOKEN): the API needs credentials.
BENCH_TOKEN = os.environ.get("ADMIN_TOKEN") or "bench-" + os.urandom(16).hex()
# The admin's password where a phase logs in through the web UI.
BENCH_PASSWORD = "bench-" + os.urandom(12).hex()

FINAL = {"success", "failed", "error", "cancelled"}
ONE_TEST = "smoke/test_one.py"
BIG_LOG = "big/test_big_log.py"


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def med(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def parse_time_ns(text):
    if text is None:
        return None
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp() * 1_000_000) * 1000


def cpu_busy(seconds=1.0):
    """Share of all CPUs busy over `seconds`, from /proc/stat: between
    phases, when the suite itself is idle, that is other work."""
    def sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return idle, sum(fields)
    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def auth_headers():
    """The admin token every backend of the suite is started with."""
    return {"Authorization": f"Bearer {BENCH_TOKEN}"}


def wait_until(predicate, timeout, interval, what):
    """Bounded polling: every loop of the suite goes through here."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- Postgres ----------------------------------------------------------------


class Pg:
    def __init__(self, admin_url, psql, prefix):
        self.admin_url = admin_url
        self.psql = psql
        self.prefix = prefix
        self.created = []

    def url(self, name):
        parts = urllib.parse.urlsplit(self.admin_url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))

    def sql(self, url, sql, timeout=300):
        out = subprocess.run(
            [self.psql, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
            capture_output=True, text=True, timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}")
        return out.stdout

    def create(self, phase):
        name = f"{self.prefix}_{phase}"
        self.sql(self.admin_url, f'DROP DATABASE IF EXISTS "{name}"')
        self.sql(self.admin_url, f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url(name)

    def drop_all(self):
        for name in self.created:
            try:
                self.sql(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', timeout=60)
            except Exception as e:  # best effort: report, go on
                log(f"could not drop database {name}: {e}")
        self.created = []


# --- the backend ---------------------------------------------------------------


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Backend:
    """One service process, with its RSS sampled every 50 ms."""

    def __init__(self, args, phase, database_url, mode, extra_env=None):
        self.args = args
        self.phase = phase
        self.stamps_path = os.path.join(args.work, f"stamps-{phase}.txt")
        open(self.stamps_path, "w").close()
        self.log_path = os.path.join(args.work, f"backend-{phase}.log")
        env = dict(os.environ)
        env.update({
            "ADMIN_TOKEN": BENCH_TOKEN,
            "DATABASE_URL": database_url,
            "BIND_ADDR": "127.0.0.1:0",
            "TESTS_ROOT": args.tests_root,
            "MAX_PARALLEL_RUNS": "2",
            "LEASE_SECS": "30",
            "PYTHON": args.stamp,
            "INSTANCE_ID": f"bench-{phase}-{os.getpid()}",
            "RUST_LOG": "warn",
            "SHUTDOWN_GRACE_SECS": "2",
            "KILL_GRACE_MS": "500",
            "BENCH_STAMP_FILE": self.stamps_path,
            "BENCH_STAMP_MODE": mode,
            "BENCH_REAL_PYTHON": args.python,
        })
        env.update(extra_env or {})
        self.samples = []  # (monotonic, rss kB)
        self.stop_sampling = threading.Event()
        self.logfile = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [args.binary], env=env, stdout=subprocess.PIPE, stderr=self.logfile,
            stdin=subprocess.DEVNULL, text=True, start_new_session=True,
        )
        with open(os.path.join(args.work, "backend.pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        self.url = None
        found = {}

        def read_stdout():
            for line in self.proc.stdout:
                m = re.search(r"listening on (http://\S+)", line)
                if m and "url" not in found:
                    found["url"] = m.group(1)

        threading.Thread(target=read_stdout, daemon=True).start()
        try:
            wait_until(lambda: found.get("url") or self.proc.poll() is not None,
                       60, 0.02, f"backend {phase} to listen")
        except Exception:
            self.stop()
            raise
        if self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"backend {phase} exited: {self.tail()}")
        self.url = found["url"]
        parsed = urllib.parse.urlsplit(self.url)
        self.host, self.port = parsed.hostname, parsed.port
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            self.stop()
            raise RuntimeError(f"backend listens on {self.host}, not loopback")
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while not self.stop_sampling.is_set():
            kb = rss_kb(self.proc.pid)
            if kb is None:
                return
            self.samples.append((time.monotonic(), kb))
            self.stop_sampling.wait(0.05)

    def rss_mb(self):
        kb = rss_kb(self.proc.pid)
        return kb / 1024 if kb is not None else float("nan")

    def peak_mb(self, since=None, until=None):
        window = [kb for t, kb in list(self.samples)
                  if (since is None or t >= since) and (until is None or t <= until)]
        return max(window) / 1024 if window else float("nan")

    def tail(self, lines=20):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        self.stop_sampling.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.logfile.close()


class Client:
    """A keep-alive HTTP/1.1 client for one backend."""

    def __init__(self, backend, timeout=30):
        self.host, self.port, self.timeout = backend.host, backend.port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        headers = dict(auth_headers(), **(headers or {}))
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read()
                return resp.status, resp.headers, payload
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise

    def json(self, method, path, body=None, expect=(200, 201)):
        status, _, payload = self.request(method, path, body)
        if status not in expect:
            raise RuntimeError(f"{method} {path}: {status} {payload[:300]!r}")
        return json.loads(payload)

    def post_run(self, environment_id, path=ONE_TEST):
        return self.json("POST", "/api/runs", {
            "environment_id": environment_id, "paths": [path],
        }, expect=(201,))["id"]

    def close(self):
        if self.conn is not None:
            self.conn.close()


class Stamps:
    """The stamp file the PYTHON wrapper appends to, read incrementally."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.start = {}
        self.end = {}

    def refresh(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.decode().splitlines():
            kind, run, ns = line.split()
            (self.start if kind == "start" else self.end)[int(run)] = int(ns)
        return self

    def wait_start(self, run_id, timeout=10):
        # The stamp holds its own time: polling only needs to be frequent
        # enough not to slow the loop, and light enough not to steal CPU.
        return wait_until(lambda: self.refresh().start.get(run_id), timeout, 0.002,
                          f"run {run_id} to start")

    def wait_end(self, run_id, timeout=120):
        return wait_until(lambda: self.refresh().end.get(run_id), timeout, 0.005,
                          f"run {run_id} to end")


def wait_finished(client, run_id, timeout=120, interval=0.005):
    def done():
        run = client.json("GET", f"/api/runs/{run_id}")
        return run if run["status"] in FINAL else None
    return wait_until(done, timeout, interval, f"run {run_id} to finish")


# --- phases --------------------------------------------------------------------


def process_start_ms(args, samples):
    """This machine's own cost of starting a process: the stamp, in `stub`
    mode, started straight from here (no service, no supervisor), from the
    call to its first instruction's stamp. Every dispatch and hand-off
    contains one such start: a floor under both on this machine."""
    path = os.path.join(args.work, "stamps-process-start.txt")
    env = dict(os.environ, BENCH_STAMP_FILE=path, BENCH_STAMP_MODE="stub")
    asked = {}
    for i in range(samples):
        env["TEST_RUN_ID"] = str(i)
        time.sleep(0.01)
        asked[i] = time.time_ns()
        subprocess.run([args.stamp], env=env, stdin=subprocess.DEVNULL, check=True)
    stamps = Stamps(path).refresh()
    return pct([(stamps.start[i] - t0) / 1e6 for i, t0 in asked.items()], 50)


def phase_dispatch(args, pg, res):
    """POST on an idle environment of an idle service -> wrapper's stamp.
    The wrapper is a stub here (no Python), so that many samples are cheap;
    what happens after the stamp does not enter the figure."""
    be = Backend(args, "dispatch", pg.create("dispatch"), mode="stub")
    client = Client(be)
    try:
        time.sleep(2)
        res["rss_idle_mb"] = be.rss_mb()
        stamps = Stamps(be.stamps_path)
        # Warm-up: first connections of the pool, first thread spawns.
        for env in (1, 2, 3):
            run_id = client.post_run(env)
            stamps.wait_start(run_id)
            wait_finished(client, run_id)
        p50s, p99s, pooled = [], [], []
        for rep in range(args.reps):
            lat = []
            for i in range(args.dispatch_samples):
                env = (rep * args.dispatch_samples + i) % 100 + 1
                time.sleep(0.02)
                t0 = time.time_ns()
                run_id = client.post_run(env)
                started = stamps.wait_start(run_id)
                lat.append((started - t0) / 1e6)
                wait_finished(client, run_id)
            p50s.append(pct(lat, 50))
            p99s.append(pct(lat, 99))
            pooled += lat
            log(f"dispatch rep {rep + 1}: p50 {p50s[-1]:.2f} ms, p99 {p99s[-1]:.2f} ms, max {max(lat):.2f} ms")
        res["process_start_p50_ms"] = process_start_ms(args, args.dispatch_samples)
        log(f"process start (no service): p50 {res['process_start_p50_ms']:.2f} ms")
        res["dispatch_p50_ms"] = med(p50s)
        res["dispatch_p99_ms"] = med(p99s)
        res["dispatch_max_ms"] = max(pooled)
        res["dispatch_samples"] = len(pooled)
        res["rss_peak_dispatch_mb"] = be.peak_mb()
    finally:
        client.close()
        be.stop()


def pytest_args():
    # The runner's own arguments (backend/src/runner/mod.rs).
    return ["-m", "pytest", "-v", "-rA", "--color=yes", "-p", "no:cacheprovider",
            "-o", "junit_family=xunit1"]


def phase_overhead(args, pg, res):
    """n runs of a one-test file through the service vs the same n pytest
    invocations run directly, both one after the other; hand-off gaps from
    the same runs.

    A shared machine's load drifts over a minute, so the two sides are
    interleaved in blocks of 5 runs, in ABBA order. A service block is
    its runs queued at once on one environment, timed from its first test
    process's start (the POST before it is the dispatch latency, measured
    above) to the last run's `finished_at`; a direct block from its first
    pytest start to its last exit."""
    be = Backend(args, "overhead", pg.create("overhead"), mode="wrap")
    client = Client(be)
    junit = os.path.join(args.work, "direct-junit.xml")
    direct_cmd = [args.python] + pytest_args() + [
        f"--rootdir={args.tests_root}", f"--junitxml={junit}", "--", ONE_TEST]
    direct_env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    direct_env.pop("PYTEST_ADDOPTS", None)
    n = args.overhead_runs
    block = min(5, n)

    def direct_once():
        out = subprocess.run(direct_cmd, cwd=args.tests_root, env=direct_env,
                             capture_output=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"direct pytest failed: {out.stdout[-500:]!r}")

    def direct_block(k):
        t = time.perf_counter()
        for _ in range(k):
            direct_once()
        return time.perf_counter() - t

    def service_block(k):
        ids = [client.post_run(1) for _ in range(k)]
        # The block's time comes from the stamps and `finished_at`, not from
        # this poll: a slower poll loses nothing, and takes less CPU from
        # the runs being measured on a small machine (it polled every 20 ms).
        # Every 250 ms is still four times as often as the SPA.
        wait_until(lambda: client.json("GET", f"/api/runs/{ids[-1]}")["status"] in FINAL,
                   30 + k * 10, 0.25, "the overhead runs to finish")
        runs = client.json("GET", f"/api/runs?environment_id=1&per_page={max(k, 1)}")["items"]
        runs = [r for r in runs if r["id"] in set(ids)]
        bad = [r for r in runs if r["status"] != "success"]
        if len(runs) != k or bad:
            raise RuntimeError(f"overhead runs did not all succeed: {bad[:2]}")
        stamps.refresh()
        took = (max(parse_time_ns(r["finished_at"]) for r in runs) - stamps.start[ids[0]]) / 1e9
        gaps = [(stamps.start[b] - stamps.end[a]) / 1e6 for a, b in zip(ids, ids[1:])]
        in_process = sum(stamps.end[i] - stamps.start[i] for i in ids) / 1e9
        return took, gaps, in_process

    try:
        stamps = Stamps(be.stamps_path)
        direct_once()
        wait_finished(client, client.post_run(1), timeout=60, interval=0.02)
        ratios, gaps_p50, direct_s, service_s, per_run_ms = [], [], [], [], []
        pooled_gaps = []
        for rep in range(args.reps):
            direct = service = in_process = 0.0
            gaps = []
            sizes = [block] * (n // block) + ([n % block] if n % block else [])
            for i, k in enumerate(sizes):
                service_first = (i + rep) % 2 == 1
                if service_first:
                    took, g, inside = service_block(k)
                    direct += direct_block(k)
                else:
                    direct += direct_block(k)
                    took, g, inside = service_block(k)
                service += took
                in_process += inside
                gaps += g
            ratios.append(service / direct)
            gaps_p50.append(pct(gaps, 50))
            pooled_gaps += gaps
            direct_s.append(direct)
            service_s.append(service)
            per_run_ms.append((service - in_process) / n * 1000)
            log(f"overhead rep {rep + 1}: direct {direct:.2f} s, service {service:.2f} s, "
                f"ratio {ratios[-1]:.3f}; per run: direct {direct / n * 1000:.0f} ms, test process "
                f"under the service {in_process / n * 1000:.0f} ms, outside it {per_run_ms[-1]:.1f} ms; "
                f"hand-off p50 {gaps_p50[-1]:.2f} ms, max {max(gaps):.2f} ms")
        res["overhead_ratio"] = med(ratios)
        res["overhead_direct_s"] = med(direct_s)
        res["overhead_service_s"] = med(service_s)
        res["overhead_outside_process_ms_per_run"] = med(per_run_ms)
        res["overhead_direct_ms_per_run"] = med(direct_s) / n * 1000
        res["handoff_p50_ms"] = med(gaps_p50)
        res["handoff_p99_ms"] = pct(pooled_gaps, 99)
        res["handoff_samples"] = len(pooled_gaps)
        res["rss_peak_overhead_mb"] = be.peak_mb()
    finally:
        client.close()
        be.stop()


FILL_SQL = """
INSERT INTO test_runs (username, environment_id, paths, status, status_reason,
    created_at, started_at, finished_at, exit_code, total, passed, failed,
    skipped, errors, log_bytes, fence, instance_id)
SELECT 'user' || (n % 25), n % 100 + 1, '["smoke/test_one.py", "api"]'::jsonb,
       s.status,
       CASE s.status WHEN 'failed' THEN 'some tests failed'
                     WHEN 'error' THEN 'no tests were collected (exit 5)'
                     WHEN 'cancelled' THEN 'cancelled by user' END,
       s.t, s.t + interval '1 second', s.t + (2 + n % 120) * interval '1 second',
       CASE s.status WHEN 'success' THEN 0 WHEN 'failed' THEN 1 WHEN 'error' THEN 5 END,
       12, CASE s.status WHEN 'success' THEN 11 ELSE 9 END,
       CASE s.status WHEN 'success' THEN 0 ELSE 2 END, 1, 0,
       2000 + n % 5000, n, 'bench-fill'
FROM generate_series(1, {rows}) AS n,
     LATERAL (SELECT now() - ({rows} - n) * interval '20 seconds' AS t,
                     CASE WHEN n % 10 < 7 THEN 'success'
                          WHEN n % 10 < 9 THEN 'failed'
                          WHEN n % 20 = 9 THEN 'error'
                          ELSE 'cancelled' END AS status) AS s
"""

# The statements GET /api/runs?per_page=50 sends (routes/etag.rs and
# db/runs.rs `list`): the state version behind the ETag, the total, then
# the page. Queue positions are only asked for queued runs, and the
# filled history has none. (The pool's `SELECT 1` check is left out.)
RUNLIST_SQL = """SELECT coalesce(sum(changes), 0)::bigint AS version FROM state_version;
SELECT count(*) FROM test_runs;
SELECT id, username, environment_id, paths, status, status_reason, created_at, started_at, finished_at, exit_code, total, passed, failed, skipped, errors, xfailed, xpassed, log_bytes, rerun_of FROM test_runs ORDER BY id DESC LIMIT 50 OFFSET 0;
"""

RUNLIST_COUNTS_TOTAL = "SELECT coalesce(sum(runs), 0)::bigint AS total FROM run_counts;"

COUNT_STATUS_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) c200 = 0; c304 = 0; cother = 0 end
function response(status, headers, body)
  if status == 304 then c304 = c304 + 1
  elseif status == 200 then c200 = c200 + 1
  else cother = cother + 1 end
end
function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("c200"); b = b + t:get("c304"); c = c + t:get("cother")
  end
  io.write(string.format("STATUS c200=%d c304=%d cother=%d\\n", a, b, c))
end
"""


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(args, url, seconds, headers=(), script=None):
    cmd = [args.wrk, "-t2", f"-c{args.connections}", f"-d{seconds}s", "--latency",
           "--timeout", "5s"]
    for h in list(headers) + [f"{k}: {v}" for k, v in auth_headers().items()]:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr.strip()}")
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p99 = to_ms(m.group(1), m.group(2)) if m else float("nan")
    m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p50 = to_ms(m.group(1), m.group(2)) if m else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    status = re.search(r"STATUS c200=(\d+) c304=(\d+) cother=(\d+)", text)
    return {
        "rps": rps, "p50_ms": p50, "p99_ms": p99,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else None,
        "status": tuple(int(x) for x in status.groups()) if status else None,
        "raw": text,
    }


def phase_runlist(args, pg, res):
    url = pg.create("runlist")
    be = Backend(args, "runlist", url, mode="stub")
    client = Client(be)
    try:
        t = time.monotonic()
        pg.sql(url, FILL_SQL.format(rows=args.rows))
        # As autovacuum would soon: statistics, and a visibility map for
        # index-only scans.
        pg.sql(url, "VACUUM ANALYZE test_runs")
        log(f"runlist: {args.rows} runs inserted in {time.monotonic() - t:.1f} s")
        path = "/api/runs?per_page=50"
        status, headers, body = client.request("GET", path)
        page = json.loads(body)
        if status != 200 or page["total"] != args.rows or len(page["items"]) != 50:
            raise RuntimeError(f"unexpected run list: {status} total={page.get('total')}")
        res["runlist_body_bytes"] = len(body)
        etag = headers.get("ETag")
        full_url = be.url + path
        run_wrk(args, full_url, 2)  # warm-up
        since = time.monotonic()
        reps = []
        for rep in range(args.reps):
            r = run_wrk(args, full_url, args.wrk_secs)
            if r["non2xx"] or r["socket_errors"]:
                log(f"runlist rep {rep + 1}: {r['non2xx']} non-2xx, {r['socket_errors']}")
            reps.append(r)
            log(f"runlist rep {rep + 1}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
        res["runlist_rps"] = med([r["rps"] for r in reps])
        res["runlist_p50_ms"] = med([r["p50_ms"] for r in reps])
        res["runlist_p99_ms"] = med([r["p99_ms"] for r in reps])
        res["runlist_non2xx"] = sum(r["non2xx"] for r in reps)
        res["rss_peak_runlist_mb"] = be.peak_mb(since)
        res["runlist_etag"] = etag
        if etag:
            script = os.path.join(args.work, "count-status.lua")
            with open(script, "w") as f:
                f.write(COUNT_STATUS_LUA)
            reps = []
            for rep in range(args.reps):
                r = run_wrk(args, full_url, args.wrk_304_secs,
                            headers=[f"If-None-Match: {etag}"], script=script)
                c200, c304, cother = r["status"] or (0, 0, 0)
                total = c200 + c304 + cother
                r["rate"] = c304 / total if total else 0.0
                reps.append(r)
                log(f"runlist 304 rep {rep + 1}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.1f} ms, "
                    f"304 {c304}/{total}")
            res["runlist_304_rate"] = med([r["rate"] for r in reps])
            res["runlist_304_rps"] = med([r["rps"] for r in reps])
            res["runlist_304_p99_ms"] = med([r["p99_ms"] for r in reps])
        else:
            status, _, _ = client.request("GET", path, headers={"If-None-Match": '"bench"'})
            res["runlist_304_rate"] = 0.0
            res["runlist_304_note"] = f"no ETag header (If-None-Match answered {status})"
            log("runlist: no ETag header, so no 304s")
        # The same load while the state changes, as it does whenever runs
        # go: a new (stub) run every 100 ms, each created, claimed and
        # finished. An answer cache keyed by the state version helps the
        # idle case above; here most of its entries are stale.
        stop = threading.Event()
        churned = []

        def churn():
            cc = Client(be)
            try:
                i = 0
                while not stop.wait(0.1):
                    cc.post_run(i % 100 + 1)
                    churned.append(time.monotonic())
                    i += 1
            except Exception as e:  # reported with the figures
                churned.append(repr(e))
            finally:
                cc.close()

        reps = []
        for rep in range(args.reps):
            stop.clear()
            churned.clear()
            worker = threading.Thread(target=churn, daemon=True)
            worker.start()
            r = run_wrk(args, full_url, args.wrk_secs)
            stop.set()
            worker.join(timeout=30)
            r["changes_per_s"] = sum(1 for c in churned if isinstance(c, float)) / args.wrk_secs
            reps.append(r)
            errors = [c for c in churned if not isinstance(c, float)]
            log(f"runlist while runs go rep {rep + 1}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, "
                f"p99 {r['p99_ms']:.1f} ms, {r['changes_per_s']:.1f} new runs/s"
                + (f"; churn failed: {errors[0]}" if errors else ""))
        res["runlist_busy_rps"] = med([r["rps"] for r in reps])
        res["runlist_busy_p99_ms"] = med([r["p99_ms"] for r in reps])
        res["runlist_busy_runs_per_s"] = med([r["changes_per_s"] for r in reps])
    finally:
        client.close()
        be.stop()
    explain = os.path.join(args.out, "runlist-explain.txt")
    with open(explain, "w") as f:
        for stmt in runlist_sql(pg, url).strip().splitlines():
            f.write(f"-- {stmt}\n")
            f.write(pg.sql(url, f"EXPLAIN (ANALYZE, BUFFERS) {stmt}"))
            f.write("\n")
    phase_dbshare(args, pg, url, res)


def runlist_sql(pg, url):
    """RUNLIST_SQL, with the total from run_counts in a build that keeps
    totals there (the fix BENCHMARKS.md proposes)."""
    if pg.sql(url, "SELECT to_regclass('run_counts') IS NOT NULL").strip() == "t":
        return RUNLIST_SQL.replace("SELECT count(*) FROM test_runs;", RUNLIST_COUNTS_TOTAL)
    return RUNLIST_SQL


def phase_dbshare(args, pg, url, res):
    """The run list's SQL alone, through pgbench with the same 32 clients
    (extended protocol: diesel's boxed queries are not prepared once)."""
    script = os.path.join(args.work, "runlist.sql")
    sql = runlist_sql(pg, url)
    if RUNLIST_COUNTS_TOTAL in sql:
        res["pgbench_total_from"] = "run_counts"
    with open(script, "w") as f:
        f.write(sql)
    tps = []
    for rep in range(args.reps):
        out = subprocess.run(
            [args.pgbench, "-n", "-M", "extended", f"-c{args.connections}", "-j2",
             f"-T{args.wrk_secs}", "-f", script, url],
            capture_output=True, text=True, timeout=args.wrk_secs + 120)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench failed: {out.stderr.strip()[-500:]}")
        m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout) \
            or re.search(r"tps = ([\d.]+)", out.stdout)
        tps.append(float(m.group(1)))
        log(f"pgbench rep {rep + 1}: {tps[-1]:.0f} tps")
    res["pgbench_tps"] = med(tps)
    if res.get("runlist_rps"):
        res["db_share"] = res["runlist_rps"] / res["pgbench_tps"]


def phase_drain(args, pg, res):
    url = pg.create("drain")
    be = Backend(args, "drain", url, mode="wrap")
    client = Client(be)
    n = args.drain_runs
    try:
        stamps = Stamps(be.stamps_path)
        since = time.monotonic()
        t0 = time.time_ns()
        ids = [client.post_run(i % 100 + 1) for i in range(n)]
        res["rss_queued_mb"] = be.rss_mb()
        queued_now = client.json("GET", "/api/runs?status=queued&per_page=1")["total"]
        res["rss_queued_count"] = queued_now
        t = time.perf_counter()
        client.json("GET", "/api/runs?status=queued&per_page=500")
        res["queued_list_500_ms"] = (time.perf_counter() - t) * 1000
        log(f"drain: {n} runs posted in {(time.time_ns() - t0) / 1e9:.1f} s; "
            f"{queued_now} queued, RSS {res['rss_queued_mb']:.1f} MB")

        def drained():
            q = client.json("GET", "/api/runs?status=queued&per_page=1")["total"]
            r = client.json("GET", "/api/runs?status=running&per_page=1")["total"]
            return q == 0 and r == 0
        wait_until(drained, args.drain_timeout, 0.25, "the queue to drain")
        res["rss_peak_drain_mb"] = be.peak_mb(since)
    finally:
        client.close()
        be.stop()
    rows = []
    for line in pg.sql(url, "SELECT id, environment_id, status, "
                       "(extract(epoch FROM started_at) * 1e6)::bigint, "
                       "(extract(epoch FROM finished_at) * 1e6)::bigint "
                       "FROM test_runs ORDER BY id").split():
        i, env, status, start, end = line.split("|")
        rows.append((int(i), int(env), status, int(start) * 1000 if start else None,
                     int(end) * 1000 if end else None))
    rows = [r for r in rows if r[0] in set(ids)]
    finished = [r for r in rows if r[2] in FINAL]
    res["drain_finished"] = len(finished)
    res["drain_success"] = sum(1 for r in rows if r[2] == "success")
    res["drain_total"] = n
    # Overlap on one environment, by the database's clock and by the
    # processes' own stamps; at most MAX_PARALLEL_RUNS processes at once.
    stamps.refresh()
    overlap_db = overlap_proc = fifo_breaks = 0
    by_env = {}
    for r in rows:
        by_env.setdefault(r[1], []).append(r)
    for env_rows in by_env.values():
        by_start = sorted(env_rows, key=lambda r: r[3] or 0)
        if [r[0] for r in by_start] != sorted(r[0] for r in env_rows):
            fifo_breaks += 1
        for a, b in zip(by_start, by_start[1:]):
            if a[4] is None or b[3] is None or b[3] < a[4]:
                overlap_db += 1
        procs = sorted((stamps.start.get(r[0]), stamps.end.get(r[0])) for r in env_rows
                       if r[0] in stamps.start)
        for (_, a_end), (b_start, _) in zip(procs, procs[1:]):
            if a_end is None or b_start < a_end:
                overlap_proc += 1
    events = sorted([(s, 1) for i, s in stamps.start.items() if i in set(ids)]
                    + [(e, -1) for i, e in stamps.end.items() if i in set(ids)])
    live = max_live = 0
    for _, delta in events:
        live += delta
        max_live = max(max_live, live)
    res["drain_overlap"] = overlap_db + overlap_proc
    res["drain_fifo_breaks"] = fifo_breaks
    res["drain_max_parallel"] = max_live
    total = (max(r[4] for r in finished) - t0) / 1e9
    ideal = sum(r[4] - r[3] for r in finished) / 2 / 1e9
    ideal_proc = sum(stamps.end[i] - stamps.start[i] for i in ids
                     if i in stamps.end and i in stamps.start) / 2 / 1e9
    res["drain_total_s"] = total
    res["drain_ideal_s"] = ideal
    res["drain_ratio"] = total / ideal
    res["drain_ratio_process"] = total / ideal_proc if ideal_proc else float("nan")
    log(f"drain: {len(finished)}/{n} finished in {total:.1f} s; ideal {ideal:.1f} s "
        f"(ratio {res['drain_ratio']:.3f}; vs process time {res['drain_ratio_process']:.3f}); "
        f"overlap {overlap_db}+{overlap_proc}, max parallel {max_live}")


def phase_biglog(args, pg, res):
    be = Backend(args, "biglog", pg.create("biglog"), mode="wrap",
                 extra_env={"BENCH_LOG_LINES": str(args.log_lines)})
    client = Client(be)
    try:
        stamps = Stamps(be.stamps_path)
        avail, health_p99, health_max, rss, lines_seen, bytes_seen, read_ms = [], [], [], [], [], [], []
        for rep in range(args.reps):
            stop = threading.Event()
            lat = []
            health_errors = []

            def health_load():
                hc = Client(be, timeout=10)
                try:
                    while not stop.is_set():
                        t = time.perf_counter()
                        status, _, _ = hc.request("GET", "/api/health")
                        lat.append((time.perf_counter() - t) * 1000)
                        if status != 200:
                            health_errors.append(status)
                        stop.wait(0.005)
                except Exception as e:  # reported below
                    health_errors.append(repr(e))
                finally:
                    hc.close()

            loader = threading.Thread(target=health_load, daemon=True)
            since = time.monotonic()
            loader.start()
            run_id = client.post_run(1, path=BIG_LOG)
            ended = stamps.wait_end(run_id, timeout=300)
            run = wait_finished(client, run_id, timeout=60, interval=0.005)
            available = time.time_ns()
            stop.set()
            loader.join(timeout=15)
            until = time.monotonic()
            if run["status"] != "success":
                raise RuntimeError(f"big-log run ended {run['status']}: {run.get('status_reason')}")
            t = time.perf_counter()
            offset, content, complete = 0, [], False
            for _ in range(10000):
                chunk = client.json("GET", f"/api/runs/{run_id}/log?offset={offset}")
                content.append(chunk["content"])
                complete = chunk["complete"]
                if chunk["next_offset"] == offset:
                    break
                offset = chunk["next_offset"]
            read_ms.append((time.perf_counter() - t) * 1000)
            text = "".join(content)
            # The first line follows pytest's own "path::test " on the same line.
            got = len(re.findall(r"bench-line \d{6} ", text))
            capped = "bytes cut (log limit reached)" in text
            if not complete or (got != args.log_lines and not capped):
                raise RuntimeError(f"log incomplete: {got} lines, complete={complete}")
            avail.append((available - ended) / 1e6)
            health_p99.append(pct(lat, 99))
            health_max.append(max(lat) if lat else float("nan"))
            rss.append(be.peak_mb(since, until))
            lines_seen.append(got)
            bytes_seen.append(len(text.encode()))
            log(f"biglog rep {rep + 1}: log available {avail[-1]:.0f} ms after the process ended; "
                f"{got} lines, {bytes_seen[-1] / 1e6:.1f} MB{' (capped)' if capped else ''}; "
                f"health p99 {health_p99[-1]:.1f} ms over {len(lat)} requests "
                f"(max {health_max[-1]:.1f}); RSS peak {rss[-1]:.1f} MB"
                + (f"; health errors {health_errors[:3]}" if health_errors else ""))
        res["biglog_available_ms"] = med(avail)
        res["biglog_health_p99_ms"] = med(health_p99)
        res["biglog_health_max_ms"] = max(health_max)
        res["rss_biglog_mb"] = med(rss)
        res["rss_peak_biglog_mb"] = max(rss)
        res["biglog_lines"] = min(lines_seen)
        res["biglog_bytes"] = max(bytes_seen)
        res["biglog_read_ms"] = med(read_ms)
    finally:
        client.close()
        be.stop()


HISTORY_FILES = 50
HISTORY_TESTS_PER_FILE = 20

# {runs} finished runs spread evenly over 14 days on 100 environments; each
# ran one of 50 files of 20 tests. In every file, test_0 always fails,
# test_1 fails one time in three (so it flips), test_2 is skipped one time
# in ten, the rest pass; durations grow with the test's number.
HISTORY_SQL = """
INSERT INTO test_runs (username, environment_id, paths, status, created_at,
    started_at, finished_at, exit_code, total, passed, failed, skipped, errors)
SELECT 'user' || (n % 25), n % 100 + 1,
       jsonb_build_array('suite/test_' || (n % {files}) || '.py'), 'failed',
       s.t, s.t, s.t, 1, {tests}, {tests} - 2, 1, 0, 0
FROM generate_series(1, {runs}) AS n,
     LATERAL (SELECT now() - ({runs} - n) * (interval '14 days' / {runs}) AS t) AS s;
INSERT INTO run_cases (run_id, nodeid, outcome, duration_ms)
SELECT r.id, 'suite/test_' || (r.id % {files}) || '.py::test_' || k,
       CASE WHEN k = 0 THEN 'failed'
            WHEN k = 1 AND random() < 0.33 THEN 'failed'
            WHEN k = 2 AND random() < 0.1 THEN 'skipped'
            ELSE 'passed' END,
       (k * 25 + random() * 100)::bigint
FROM test_runs r, generate_series(0, {tests} - 1) AS k;
SELECT rebuild_test_insights();
SELECT rebuild_environment_health();
"""


def phase_insights(args, pg, res):
    url = pg.create("insights")
    be = Backend(args, "insights", url, mode="stub")
    client = Client(be)
    try:
        t = time.monotonic()
        pg.sql(url, HISTORY_SQL.format(runs=args.history_runs, files=HISTORY_FILES,
                                       tests=HISTORY_TESTS_PER_FILE), timeout=1800)
        pg.sql(url, "VACUUM ANALYZE")
        cases = int(pg.sql(url, "SELECT count(*) FROM run_cases").strip())
        res["history_cases"] = cases
        log(f"insights: {args.history_runs} runs, {cases} case rows in {time.monotonic() - t:.0f} s")
        calls = [
            ("insights_7d", "/api/insights?days=7"),
            ("insights_1d", "/api/insights?days=1"),
            ("insights_30d", "/api/insights?days=30"),
            ("health_7d", "/api/insights/environments?days=7"),
            ("health_30d", "/api/insights/environments?days=30"),
            ("history_test", "/api/tests/history?nodeid=suite/test_7.py::test_1&limit=50"),
            ("history_file", "/api/tests/history?path=suite/test_7.py&limit=50"),
        ]
        for key, path in calls:
            times = []
            for _ in range(args.reps * 3 + 1):
                t = time.monotonic()
                status, _, body = client.request("GET", path)
                times.append((time.monotonic() - t) * 1000)
                if status != 200:
                    raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
            # The first call warms the caches; the median of the rest.
            res[f"{key}_ms"] = med(times[1:])
            log(f"{path}: median {res[f'{key}_ms']:.1f} ms, first {times[0]:.1f} ms")
    finally:
        client.close()
        be.stop()


STREAMER = "stream/test_stream.py"


def stream_runs(client, count, seconds):
    """`count` runs of a test printing a line every 20 ms for `seconds`,
    on environments 1..count, once each is running."""
    ids = [client.json("POST", "/api/runs", {
        "environment_id": env, "paths": [STREAMER],
    }, expect=(201,))["id"] for env in range(1, count + 1)]
    for run_id in ids:
        wait_until(lambda: client.json("GET", f"/api/runs/{run_id}")["status"] == "running",
                   60, 0.05, f"run {run_id} to start")
    return ids


def runs_verdict(client, ids, timeout):
    """Each run's final status, and how many lost their lease."""
    finished = [wait_finished(client, run_id, timeout=timeout, interval=0.2) for run_id in ids]
    lost = sum(1 for run in finished if (run.get("status_reason") or "").startswith("executor lost"))
    ok = sum(1 for run in finished if run["status"] == "success")
    return ok, lost, [(run["id"], run["status"], run.get("status_reason")) for run in finished]


def phase_browsers(args, pg, res):
    """1 000 browsers poll while 4 runs stream logs: answers stay quick,
    nothing fails, no lease is lost."""
    seconds = args.browser_secs
    be = Backend(args, "browsers", pg.create("browsers"), mode="wrap",
                 extra_env={"MAX_PARALLEL_RUNS": "4", "BENCH_STREAM_SECS": str(seconds + 5)})
    client = Client(be)
    try:
        ids = stream_runs(client, 4, seconds + 5)
        since = time.monotonic()
        env = dict(os.environ)
        env["EXECUTOR_TOKEN"] = BENCH_TOKEN
        out = subprocess.run(
            [args.browsers, be.url, ",".join(map(str, ids)), str(args.browser_count), str(seconds)],
            capture_output=True, text=True, timeout=seconds + 120, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"browsers failed: {out.stderr.strip()[-500:]}")
        figures = json.loads(out.stdout)
        res["rss_peak_browsers_mb"] = be.peak_mb(since)
        ok, lost, finished = runs_verdict(client, ids, seconds + 120)
        statuses = figures["statuses"]
        res["browsers_rps"] = figures["rps"]
        res["browsers_p50_ms"] = figures["p50_ms"]
        res["browsers_p99_ms"] = figures["p99_ms"]
        res["browsers_5xx"] = sum(n for s, n in statuses.items() if int(s) >= 500) + figures["transport_errors"]
        res["browsers_304_share"] = statuses.get("304", 0) / max(1, figures["requests"])
        res["browsers_runs_ok"] = ok
        res["browsers_leases_lost"] = lost
        log(f"browsers: {figures['requests']} requests, {figures['rps']:.0f} req/s, p50 "
            f"{figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, statuses {statuses}, "
            f"{figures['transport_errors']} transport errors; runs {finished}")
    finally:
        client.close()
        be.stop()


def phase_flood(args, pg, res):
    """20 expensive requests at once (year-long insights over a seeded
    history, the run list at its largest page, file histories, a cancel
    that waits), over and over for 20 s, while 4 runs go."""
    url = pg.create("flood")
    be = Backend(args, "flood", url, mode="wrap",
                 extra_env={"MAX_PARALLEL_RUNS": "4", "BENCH_STREAM_SECS": "30", "LEASE_SECS": "10"})
    client = Client(be)
    try:
        pg.sql(url, HISTORY_SQL.format(runs=args.flood_history_runs, files=HISTORY_FILES,
                                       tests=HISTORY_TESTS_PER_FILE), timeout=1800)
        pg.sql(url, "VACUUM ANALYZE")
        ids = stream_runs(client, 4, 30)
        stop = threading.Event()
        lat, statuses = [], {}
        lock = threading.Lock()
        paths = ["/api/insights?days=366", "/api/runs?per_page=500",
                 "/api/tests/history?path=suite/test_7.py&limit=500",
                 "/api/insights?days=30", "/api/runs?per_page=500&status=failed"]

        def hammer(n):
            hc = Client(be, timeout=60)
            try:
                i = n
                while not stop.is_set():
                    t = time.perf_counter()
                    status, _, _ = hc.request("GET", paths[i % len(paths)])
                    with lock:
                        lat.append((time.perf_counter() - t) * 1000)
                        statuses[status] = statuses.get(status, 0) + 1
                    i += 1
            except Exception as e:  # reported with the figures
                with lock:
                    statuses[repr(e)[:40]] = statuses.get(repr(e)[:40], 0) + 1
            finally:
                hc.close()

        workers = [threading.Thread(target=hammer, args=(n,), daemon=True) for n in range(20)]
        for w in workers:
            w.start()
        time.sleep(20)
        stop.set()
        for w in workers:
            w.join(timeout=90)
        ok, lost, finished = runs_verdict(client, ids, 120)
        res["flood_requests"] = len(lat)
        res["flood_p50_ms"] = pct(lat, 50)
        res["flood_p99_ms"] = pct(lat, 99)
        res["flood_429"] = statuses.get(429, 0)
        res["flood_5xx"] = sum(n for s, n in statuses.items() if not isinstance(s, int) or s >= 500)
        res["flood_runs_ok"] = ok
        res["flood_leases_lost"] = lost
        log(f"flood: {len(lat)} expensive requests, p50 {res['flood_p50_ms']:.0f} ms, "
            f"p99 {res['flood_p99_ms']:.0f} ms, statuses {statuses}; runs {finished}")
    finally:
        client.close()
        be.stop()


# --- ten times the data --------------------------------------------------------

# Finished runs {first}..{last} of {total}, spread evenly over {days} days up
# to now, on the 100 environments, each of one file (out of {files}) of
# {tests} tests, as in the insights phase: the ids and times of a later
# batch follow those of an earlier one.
SCALE_RUNS_SQL = """
INSERT INTO test_runs (username, environment_id, paths, status, status_reason,
    created_at, started_at, finished_at, exit_code, total, passed, failed,
    skipped, errors, log_bytes, case_count, fence, instance_id)
SELECT 'user' || (n % 25), n % 100 + 1,
       jsonb_build_array('suite/test_' || (n % {files}) || '.py'), 'failed',
       'some tests failed', s.t - interval '3 seconds', s.t - interval '2 seconds', s.t, 1,
       {tests}, {tests} - 2, 1, 0, 0, 0, {tests}, n, 'bench-scale'
FROM generate_series({first}, {last}) AS n,
     LATERAL (SELECT now() - ({total} - n) * (interval '{days} days' / {total}) AS t) AS s
"""

SCALE_CASES_SQL = """
INSERT INTO run_cases (run_id, nodeid, outcome, duration_ms)
SELECT r.id, 'suite/test_' || (r.id % {files}) || '.py::test_' || k,
       CASE WHEN k = 0 THEN 'failed'
            WHEN k = 1 AND random() < 0.33 THEN 'failed'
            WHEN k = 2 AND random() < 0.1 THEN 'skipped'
            ELSE 'passed' END,
       (k * 25 + random() * 100)::bigint
FROM test_runs r, generate_series(0, {tests} - 1) AS k
WHERE r.id > {after_id} AND r.id <= {last_id}
"""

# What a run and a case cost on disk: each table with its indexes and TOAST.
SCALE_TABLES = ["test_runs", "run_cases", "test_period_stats", "test_last_results", "test_flips",
                "run_log_chunks", "run_reports"]


def disk_usage(pg, url):
    rows = {}
    names = ", ".join(f"'{t}'" for t in SCALE_TABLES)
    for line in pg.sql(url, "SELECT relname, pg_total_relation_size(oid), pg_relation_size(oid) "
                       f"FROM pg_class WHERE relkind = 'r' AND relname IN ({names})").split():
        name, total, heap = line.split("|")
        rows[name] = {"total_bytes": int(total), "heap_bytes": int(heap)}
    for name in rows:
        rows[name]["rows"] = int(pg.sql(url, f"SELECT count(*) FROM {name}").strip())
    return rows


def seed_scale(args, pg, url, upto, timings):
    """Runs up to `upto` in all (batches of 100 000, so that no statement
    holds millions of pending trigger events), their case rows, then the
    insights tables rebuilt from them and statistics refreshed."""
    have = int(pg.sql(url, "SELECT count(*) FROM test_runs WHERE instance_id = 'bench-scale'").strip())
    before_id = int(pg.sql(url, "SELECT coalesce(max(id), 0) FROM test_runs").strip())
    t = time.monotonic()
    first = have + 1
    while first <= upto:
        last = min(upto, first + 99_999)
        pg.sql(url, SCALE_RUNS_SQL.format(first=first, last=last, total=args.scale_runs,
                                          days=args.scale_days, files=HISTORY_FILES,
                                          tests=args.scale_tests), timeout=3600)
        first = last + 1
    last_id = int(pg.sql(url, "SELECT coalesce(max(id), 0) FROM test_runs").strip())
    timings.append(("runs", time.monotonic() - t))
    t = time.monotonic()
    step = 50_000
    for lo in range(before_id, last_id, step):
        pg.sql(url, SCALE_CASES_SQL.format(files=HISTORY_FILES, tests=args.scale_tests,
                                           after_id=lo, last_id=min(last_id, lo + step)), timeout=3600)
    timings.append(("cases", time.monotonic() - t))
    t = time.monotonic()
    pg.sql(url, "SELECT rebuild_test_insights()", timeout=7200)
    timings.append(("rebuild", time.monotonic() - t))
    t = time.monotonic()
    pg.sql(url, "VACUUM ANALYZE", timeout=7200)
    timings.append(("vacuum", time.monotonic() - t))


def time_calls(client, calls, reps):
    """Each call timed `reps` + 1 times on one keep-alive connection: the
    median of all but the first. A call answered 404 is recorded as None."""
    out = {}
    for key, path in calls:
        times = []
        for _ in range(reps + 1):
            t = time.monotonic()
            status, _, body = client.request("GET", path)
            times.append((time.monotonic() - t) * 1000)
            if status == 404 and key == "health":
                break
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        if len(times) == 1:
            out[key] = None
            log(f"{path}: 404, the endpoint is missing")
            continue
        out[key] = med(times[1:])
        log(f"{path}: median {out[key]:.1f} ms, first {times[0]:.1f} ms")
    return out


def churn_while(be, seconds, work):
    """Runs `work()` while a new (stub) run is created every 100 ms, each
    claimed and finished at once, so that the state every answer depends
    on keeps moving. Answers work's result and the runs created a second."""
    stop = threading.Event()
    churned = []

    def churn():
        cc = Client(be)
        try:
            i = 0
            while not stop.wait(0.1):
                cc.post_run(i % 100 + 1)
                churned.append(time.monotonic())
                i += 1
        except Exception as e:  # reported with the figures
            churned.append(repr(e))
        finally:
            cc.close()

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    try:
        result = work()
    finally:
        stop.set()
        worker.join(timeout=30)
    errors = [c for c in churned if not isinstance(c, float)]
    if errors:
        log(f"churn failed: {errors[0]}")
    return result, sum(1 for c in churned if isinstance(c, float)) / seconds


def phase_scale(args, pg, res):
    """1 000 000 finished runs and 20 000 000 case rows (configurable): run
    list under wrk while runs come and go, histories, insights, the
    environment health page, and the disk cost per run and per case at
    half and at full size."""
    url = pg.create("scale")
    be = Backend(args, "scale", url, mode="stub")
    client = Client(be)
    phase_started = time.monotonic()
    try:
        sizes = {}
        halves = [args.scale_runs // 2, args.scale_runs] if args.scale_runs >= 2 else [args.scale_runs]
        for upto in halves:
            timings = []
            seed_scale(args, pg, url, upto, timings)
            usage = disk_usage(pg, url)
            sizes[upto] = usage
            runs = usage["test_runs"]["rows"]
            cases = usage["run_cases"]["rows"]
            log(f"scale: {runs} runs, {cases} case rows; seeding took "
                + ", ".join(f"{k} {v:.0f} s" for k, v in timings))
            res.setdefault("scale_seed_seconds", {})[str(upto)] = dict(timings)
        res["scale_disk"] = {str(k): v for k, v in sizes.items()}
        full = sizes[halves[-1]]
        runs = full["test_runs"]["rows"]
        cases = full["run_cases"]["rows"]
        res["scale_runs"] = runs
        res["scale_cases"] = cases
        insight_bytes = sum(full[t]["total_bytes"] for t in ("test_period_stats", "test_last_results",
                                                              "test_flips"))
        res["scale_bytes_per_run"] = full["test_runs"]["total_bytes"] / max(1, runs)
        res["scale_bytes_per_case"] = full["run_cases"]["total_bytes"] / max(1, cases)
        res["scale_insight_bytes_per_case"] = insight_bytes / max(1, cases)
        if len(halves) == 2:
            half = sizes[halves[0]]
            res["scale_half_bytes_per_run"] = half["test_runs"]["total_bytes"] / max(1, half["test_runs"]["rows"])
            res["scale_half_bytes_per_case"] = half["run_cases"]["total_bytes"] / max(1, half["run_cases"]["rows"])
            res["scale_half_insight_bytes_per_case"] = sum(
                half[t]["total_bytes"] for t in ("test_period_stats", "test_last_results", "test_flips")
            ) / max(1, half["run_cases"]["rows"])
            res["scale_half_runs"] = half["test_runs"]["rows"]
        log("scale: disk per run {:.0f} B, per case {:.0f} B (+ {:.0f} B of insights tables)".format(
            res["scale_bytes_per_run"], res["scale_bytes_per_case"], res["scale_insight_bytes_per_case"]))
        # Case rows in each window (the cost of insights grows with those).
        for days in (1, 7, 30):
            res[f"scale_cases_{days}d"] = int(pg.sql(url, (
                "SELECT count(*) FROM run_cases c JOIN test_runs r ON r.id = c.run_id "
                f"WHERE r.finished_at > now() - interval '{days} days'")).strip())
        path = "/api/runs?per_page=50"
        status, _, body = client.request("GET", path)
        if status != 200 or json.loads(body)["total"] != runs:
            raise RuntimeError(f"unexpected run list: {status} {body[:200]!r}")
        run_wrk(args, be.url + path, 2)  # warm-up
        reps = []
        for rep in range(args.reps):
            r, per_s = churn_while(be, args.wrk_secs, lambda: run_wrk(args, be.url + path, args.wrk_secs))
            r["changes_per_s"] = per_s
            reps.append(r)
            log(f"scale run list while runs go rep {rep + 1}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, "
                f"p99 {r['p99_ms']:.1f} ms, {per_s:.1f} new runs/s, {r['non2xx']} non-2xx")
        res["scale_runlist_rps"] = med([r["rps"] for r in reps])
        res["scale_runlist_p99_ms"] = med([r["p99_ms"] for r in reps])
        res["scale_runlist_runs_per_s"] = med([r["changes_per_s"] for r in reps])
        calls = [
            ("insights_7d", "/api/insights?days=7"),
            ("insights_1d", "/api/insights?days=1"),
            ("insights_30d", "/api/insights?days=30"),
            ("health", "/api/insights/environments?days=7"),
            ("history_test", "/api/tests/history?nodeid=suite/test_7.py::test_1&limit=50"),
            ("history_file", "/api/tests/history?path=suite/test_7.py&limit=50"),
        ]
        # Runs keep finishing meanwhile, as they would.
        timed, _ = churn_while(be, 1, lambda: time_calls(client, calls, args.reps * 3))
        for key, value in timed.items():
            res[f"scale_{key}_ms"] = value
        res["scale_health_missing"] = timed.get("health") is None
        res["rss_peak_scale_mb"] = be.peak_mb()
    finally:
        client.close()
        be.stop()
        res["scale_seconds"] = time.monotonic() - phase_started


# --- several instances on one database -----------------------------------------


def db_runs(pg, url, ids=None):
    """(id, environment, status, started ns, finished ns, instance) of every
    run, by the database's clock."""
    rows = []
    for line in pg.sql(url, "SELECT id, environment_id, status, "
                       "(extract(epoch FROM started_at) * 1e6)::bigint, "
                       "(extract(epoch FROM finished_at) * 1e6)::bigint, instance_id "
                       "FROM test_runs ORDER BY id").splitlines():
        i, env, status, start, end, instance = line.split("|")
        rows.append((int(i), int(env), status, int(start) * 1000 if start else None,
                     int(end) * 1000 if end else None, instance))
    if ids is not None:
        wanted = set(ids)
        rows = [r for r in rows if r[0] in wanted]
    return rows


def overlaps_and_fifo(rows):
    """Runs of one environment that overlap by the database's start and
    finish times, and environments whose runs did not start in id order."""
    overlap = fifo_breaks = 0
    by_env = {}
    for r in rows:
        by_env.setdefault(r[1], []).append(r)
    for env_rows in by_env.values():
        by_start = sorted(env_rows, key=lambda r: r[3] or 0)
        if [r[0] for r in by_start] != sorted(r[0] for r in env_rows):
            fifo_breaks += 1
        for a, b in zip(by_start, by_start[1:]):
            if a[4] is None or b[3] is None or b[3] < a[4]:
                overlap += 1
    return overlap, fifo_breaks


def phase_instances(args, pg, res):
    """Three backends on one database drain N runs of a one-test file over
    100 environments, MAX_PARALLEL_RUNS=2 each; then the dispatch latency
    of a run posted to one instance and claimed by whichever sees it."""
    url = pg.create("instances")
    count = args.instances
    backends = []
    clients = []
    n = args.instances_runs
    try:
        # The first one migrates the database; the others find it ready.
        for i in range(count):
            backends.append(Backend(args, f"instances-{i + 1}", url, mode="wrap"))
        clients = [Client(be) for be in backends]
        all_stamps = [Stamps(be.stamps_path) for be in backends]
        # Warm-up: every instance runs one.
        warm = [clients[i].post_run(i + 1) for i in range(count)]
        for run_id in warm:
            wait_finished(clients[0], run_id, timeout=60, interval=0.05)
        t0 = time.time_ns()
        ids = [clients[i % count].post_run(i % 100 + 1) for i in range(n)]
        log(f"instances: {n} runs posted in {(time.time_ns() - t0) / 1e9:.1f} s to {count} instances")

        def drained():
            q = clients[0].json("GET", "/api/runs?status=queued&per_page=1")["total"]
            r = clients[0].json("GET", "/api/runs?status=running&per_page=1")["total"]
            return q == 0 and r == 0
        wait_until(drained, args.instances_timeout, 0.5, "the queue to drain")
        rows = db_runs(pg, url, ids)
        finished = [r for r in rows if r[2] in FINAL]
        overlap, fifo_breaks = overlaps_and_fifo(rows)
        events = []
        for stamps in all_stamps:
            stamps.refresh()
            events += [(s, 1) for i, s in stamps.start.items() if i in set(ids)]
            events += [(e, -1) for i, e in stamps.end.items() if i in set(ids)]
        live = max_live = 0
        for _, delta in sorted(events):
            live += delta
            max_live = max(max_live, live)
        slots = 2 * count
        total = (max(r[4] for r in finished) - t0) / 1e9
        ideal = sum(r[4] - r[3] for r in finished) / slots / 1e9
        per_instance = {}
        for r in rows:
            per_instance[r[5]] = per_instance.get(r[5], 0) + 1
        res["instances_finished"] = len(finished)
        res["instances_success"] = sum(1 for r in rows if r[2] == "success")
        res["instances_total_runs"] = n
        res["instances_overlap"] = overlap
        res["instances_fifo_breaks"] = fifo_breaks
        res["instances_max_parallel"] = max_live
        res["instances_total_s"] = total
        res["instances_ideal_s"] = ideal
        res["instances_ratio"] = total / ideal if ideal else float("nan")
        res["instances_per_instance"] = per_instance
        res["instances_mean_run_ms"] = sum(r[4] - r[3] for r in finished) / max(1, len(finished)) / 1e6
        log(f"instances: {len(finished)}/{n} finished in {total:.1f} s; ideal {ideal:.1f} s "
            f"(ratio {res['instances_ratio']:.3f}, mean run {res['instances_mean_run_ms']:.0f} ms); "
            f"overlaps {overlap}, FIFO breaks {fifo_breaks}, at most {max_live} test processes at once; "
            f"runs per instance {per_instance}")
        # Dispatch across instances: each run posted to the instances in
        # turn, on an idle environment of an idle service; the stamp comes
        # from whichever instance claimed it.
        lat, elsewhere = [], 0
        for i in range(args.dispatch_samples):
            env = i % 100 + 1
            time.sleep(0.02)
            entry = i % count
            t = time.time_ns()
            run_id = clients[entry].post_run(env, path=ONE_TEST)

            def started():
                for k, stamps in enumerate(all_stamps):
                    at = stamps.refresh().start.get(run_id)
                    if at:
                        return (at, k)
                return None
            at, k = wait_until(started, 30, 0.002, f"run {run_id} to start")
            lat.append((at - t) / 1e6)
            elsewhere += k != entry
            wait_finished(clients[entry], run_id, timeout=60, interval=0.01)
        res["instances_dispatch_p50_ms"] = pct(lat, 50)
        res["instances_dispatch_p99_ms"] = pct(lat, 99)
        res["instances_dispatch_elsewhere"] = elsewhere / max(1, len(lat))
        log(f"instances dispatch: p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms over {len(lat)}; "
            f"{elsewhere} claimed by another instance than the one posted to")
        res["rss_peak_instances_mb"] = max(be.peak_mb() for be in backends)
    finally:
        for c in clients:
            c.close()
        for be in backends:
            be.stop()


# --- at the browser --------------------------------------------------------------

VERDICTS = "browser/test_verdicts.py"

# Each test stamps the moment pytest reports its verdict (the call phase's
# report) into verdicts.txt next to it: run id, node id, epoch ns.
VERDICTS_CONFTEST = '''import os
import time


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        stamp = f"{os.environ.get('TEST_RUN_ID')} {report.nodeid} {time.time_ns()}\\n"
        with open(os.path.join(os.path.dirname(__file__), "verdicts.txt"), "a") as f:
            f.write(stamp)
'''


def verdicts_test(cases, seconds):
    body = "import time\n\n"
    for k in range(cases):
        body += f"\ndef test_verdict_{k}():\n    time.sleep({seconds})\n\n"
    return body


def phase_browser(args, pg, res):
    """Headless Chromium on the SPA behind nginx: "Start run" → the first
    log line on the run page, and each test's verdict → its row in the
    run page's results table, with the page's one-second polling."""
    dist = os.path.join(args.root, "frontend", "dist", "index.html")
    if not os.path.exists(dist):
        raise RuntimeError("frontend/dist is not built (scripts/frontend-build.sh)")
    node_modules = os.path.join(args.root, ".local", "node", "node_modules")
    if not os.path.isdir(os.path.join(node_modules, "playwright-core")):
        raise RuntimeError("playwright-core is not in .local/node (scripts/install-deps.sh test)")
    verdicts_file = os.path.join(args.tests_root, "browser", "verdicts.txt")
    open(verdicts_file, "w").close()
    # The page asks for a login: the headless browser logs in as admin.
    be = Backend(args, "browser", pg.create("browser"), mode="wrap",
                 extra_env={"ADMIN_PASSWORD": BENCH_PASSWORD})
    nginx = None
    try:
        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        prefix = os.path.join(args.work, "nginx")
        nginx_log = open(os.path.join(args.work, "nginx.out"), "w")
        nginx = subprocess.Popen(
            [os.path.join(args.root, "scripts", "nginx.sh"), str(port), f"{be.host}:{be.port}"],
            env=dict(os.environ, NGINX_PREFIX=prefix), stdout=nginx_log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        base = f"http://127.0.0.1:{port}"

        def answers():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/health", headers=auth_headers())
                ok = conn.getresponse().status == 200
                conn.close()
                return ok
            except OSError:
                return nginx.poll() is not None
        wait_until(answers, 30, 0.1, "nginx to answer")
        if nginx.poll() is not None:
            raise RuntimeError("nginx exited; see nginx.out in the scratch directory")
        out = subprocess.run(
            ["node", os.path.join(args.root, "bench", "browser.cjs"), base, str(args.browser_runs),
             VERDICTS],
            capture_output=True, text=True, timeout=args.browser_runs * 180 + 120,
            env=dict(os.environ, NODE_PATH=node_modules, BENCH_ADMIN_PASSWORD=BENCH_PASSWORD,
                     BENCH_BROWSER_CASES=str(args.browser_cases)))
        for line in out.stderr.strip().splitlines()[-args.browser_runs - 5:]:
            log(line)
        if out.returncode != 0:
            raise RuntimeError(f"browser.cjs failed: {out.stderr.strip()[-500:]}")
        seen = json.loads(out.stdout)["runs"]
        verdicts = {}
        with open(verdicts_file) as f:
            for line in f:
                run_id, nodeid, ns = line.split()
                # By test name: the page may show the node id from another root.
                verdicts[(int(run_id), nodeid.split("::")[-1])] = int(ns)
        first_log, to_row, missing = [], [], 0
        for run in seen:
            first_log.append(run["first_log_ms"] - run["click_ms"])
            for nodeid, shown_ms in run["rows"].items():
                at = verdicts.get((run["run_id"], nodeid.split("::")[-1]))
                if at is None:
                    missing += 1
                    continue
                to_row.append(shown_ms - at / 1e6)
        if missing:
            log(f"browser: {missing} rows without a verdict stamp")
        res["browser_first_log_p50_ms"] = pct(first_log, 50)
        res["browser_first_log_p95_ms"] = pct(first_log, 95)
        res["browser_row_p50_ms"] = pct(to_row, 50)
        res["browser_row_p95_ms"] = pct(to_row, 95)
        res["browser_runs"] = len(seen)
        res["browser_rows"] = len(to_row)
        log(f"browser: Start run -> first log line p50 {res['browser_first_log_p50_ms']:.0f} ms, "
            f"p95 {res['browser_first_log_p95_ms']:.0f} ms over {len(first_log)} runs; verdict -> row "
            f"p50 {res['browser_row_p50_ms']:.0f} ms, p95 {res['browser_row_p95_ms']:.0f} ms over "
            f"{len(to_row)} rows")
    finally:
        if nginx is not None and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(timeout=15)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait(timeout=10)
        be.stop()


def phase_spa(args, res):
    wasm = sorted(glob.glob(os.path.join(args.root, "frontend", "dist", "*.wasm")))
    if not wasm:
        res["spa_gzip_kb"] = None
        return
    with open(wasm[0], "rb") as f:
        data = f.read()
    res["spa_file"] = os.path.relpath(wasm[0], args.root)
    res["spa_raw_kb"] = len(data) / 1024
    res["spa_gzip_kb"] = len(gzip.compress(data, 9)) / 1024


# --- the table -------------------------------------------------------------------


def fmt(value, spec):
    if value is None or value != value:
        return "n/a"
    return format(value, spec)


def table(res, args):
    rows = []

    def row(name, key, spec, unit, target, ok):
        value = res.get(key)
        measured = fmt(value, spec) + (unit if value is not None and value == value else "")
        verdict = "?" if value is None or value != value else ("ok" if ok(value) else "MISSED")
        if target == "(report)" and verdict != "?":
            verdict = ""
        rows.append((name, measured, target, verdict))

    def info(name, measured, target="(report)"):
        rows.append((name, measured, target, ""))

    def error_row(phase):
        if phase in res.get("errors", {}):
            rows.append((f"{phase}: FAILED", res["errors"][phase][:60], "", "ERROR"))

    error_row("dispatch")
    row("dispatch latency p50", "dispatch_p50_ms", ".1f", " ms", "<= 3 ms", lambda v: v <= 3)
    row("dispatch latency p99", "dispatch_p99_ms", ".1f", " ms", "<= 100 ms", lambda v: v <= 100)
    row("  a process start alone (in both)", "process_start_p50_ms", ".1f", " ms", "(report)",
        lambda v: True)
    error_row("overhead")
    row("hand-off gap p50", "handoff_p50_ms", ".1f", " ms", "<= 3 ms", lambda v: v <= 3)
    row(f"overhead, {args.overhead_runs} runs, service/direct", "overhead_ratio", ".3f", "x",
        "<= 1.05x", lambda v: v <= 1.05)
    error_row("runlist")
    row(f"run list req/s ({args.rows} runs, c{args.connections})", "runlist_rps", ".0f", "",
        ">= 3000", lambda v: v >= 3000)
    row("run list p99", "runlist_p99_ms", ".1f", " ms", "<= 50 ms", lambda v: v <= 50)
    if "runlist_304_rate" in res:
        note = res.get("runlist_304_note")
        if note:
            info("run list If-None-Match: 304 rate", "0% (not supported)", "(state it)")
        else:
            info("run list If-None-Match: 304 rate",
                 f"{res['runlist_304_rate'] * 100:.1f}% at {fmt(res.get('runlist_304_rps'), '.0f')} req/s, "
                 f"p99 {fmt(res.get('runlist_304_p99_ms'), '.1f')} ms", "(state it)")
    if "runlist_busy_rps" in res:
        rows.append(("run list req/s, new run every 100 ms (extra)",
                     f"{res['runlist_busy_rps']:.0f}", ">= 3000",
                     "ok" if res["runlist_busy_rps"] >= 3000 else "MISSED"))
        row("run list p99, new run every 100 ms (extra)", "runlist_busy_p99_ms", ".1f", " ms",
            "<= 50 ms", lambda v: v <= 50)
    if "db_share" in res:
        info("database share: API req/s / pgbench tps",
             f"{res['db_share']:.2f} ({res['runlist_rps']:.0f} / {res['pgbench_tps']:.0f})")
    error_row("drain")
    if "drain_finished" in res:
        row(f"queue drain: finished", "drain_finished", "d", f"/{res['drain_total']}",
            "all", lambda v: v == res["drain_total"])
        row("queue drain: overlaps", "drain_overlap", "d", "", "0", lambda v: v == 0)
        row("queue drain: total / ideal", "drain_ratio", ".3f", "x", "<= 1.15x", lambda v: v <= 1.15)
    error_row("biglog")
    row(f"log of {args.log_lines} lines: available after exit", "biglog_available_ms", ".0f", " ms",
        "<= 1000 ms", lambda v: v <= 1000)
    row("  /api/health p99 meanwhile", "biglog_health_p99_ms", ".1f", " ms", "<= 50 ms", lambda v: v <= 50)
    error_row("insights")
    if "history_cases" in res:
        cases = f"{res['history_cases'] / 1e6:.1f}M case rows"
        row(f"GET /api/insights?days=7 ({cases})", "insights_7d_ms", ".1f", " ms", "<= 100 ms",
            lambda v: v <= 100)
        row("GET /api/insights?days=1", "insights_1d_ms", ".1f", " ms", "<= 100 ms", lambda v: v <= 100)
        row("GET /api/insights?days=30 (all 14 days)", "insights_30d_ms", ".1f", " ms", "<= 100 ms",
            lambda v: v <= 100)
        row("GET /api/insights/environments?days=7", "health_7d_ms", ".1f", " ms", "<= 100 ms",
            lambda v: v <= 100)
        row("GET /api/insights/environments?days=30", "health_30d_ms", ".1f", " ms", "<= 100 ms",
            lambda v: v <= 100)
        row("GET /api/tests/history?nodeid=", "history_test_ms", ".1f", " ms", "<= 100 ms",
            lambda v: v <= 100)
        row("GET /api/tests/history?path=", "history_file_ms", ".1f", " ms", "<= 100 ms",
            lambda v: v <= 100)
    error_row("browsers")
    if "browsers_rps" in res:
        row(f"{args.browser_count} browsers polling, 4 runs streaming: p99", "browsers_p99_ms", ".1f",
            " ms", "<= 100 ms", lambda v: v <= 100)
        info("  requests/s, p50, 304 share",
             f"{res['browsers_rps']:.0f}, {res['browsers_p50_ms']:.1f} ms, "
             f"{res['browsers_304_share'] * 100:.0f}%")
        row("  5xx and transport errors", "browsers_5xx", "d", "", "0", lambda v: v == 0)
        row("  leases lost", "browsers_leases_lost", "d", "", "0", lambda v: v == 0)
        row("  runs succeeded", "browsers_runs_ok", "d", "/4", "4", lambda v: v == 4)
    error_row("flood")
    if "flood_requests" in res:
        info("20 expensive requests at once, 20 s: p50 / p99",
             f"{res['flood_p50_ms']:.0f} / {res['flood_p99_ms']:.0f} ms over {res['flood_requests']}, "
             f"{res['flood_429']} refused (429)")
        row("  5xx", "flood_5xx", "d", "", "0", lambda v: v == 0)
        row("  leases lost", "flood_leases_lost", "d", "", "0", lambda v: v == 0)
        row("  runs succeeded", "flood_runs_ok", "d", "/4", "4", lambda v: v == 4)
    error_row("instances")
    if "instances_finished" in res:
        n = res["instances_total_runs"]
        row(f"{args.instances} instances, {n} runs: finished", "instances_finished", "d", f"/{n}",
            "all", lambda v: v == n)
        row("  overlaps on one environment (database times)", "instances_overlap", "d", "", "0",
            lambda v: v == 0)
        row("  total / ideal", "instances_ratio", ".3f", "x", "<= 1.10x", lambda v: v <= 1.10)
        info("  total, ideal (sum of run times / slots)",
             f"{res['instances_total_s']:.1f} s, {res['instances_ideal_s']:.1f} s "
             f"({2 * args.instances} slots, mean run {res['instances_mean_run_ms']:.0f} ms)")
        row("  dispatch p50 across instances", "instances_dispatch_p50_ms", ".1f", " ms", "<= 3 ms",
            lambda v: v <= 3)
        row("  dispatch p99 across instances", "instances_dispatch_p99_ms", ".1f", " ms", "(report)",
            lambda v: True)
    error_row("browser")
    if "browser_runs" in res:
        row(f"browser: Start run -> first log line p50 ({res['browser_runs']} runs)",
            "browser_first_log_p50_ms", ".0f", " ms", "(report)", lambda v: True)
        row("browser: Start run -> first log line p95", "browser_first_log_p95_ms", ".0f", " ms",
            "(report)", lambda v: True)
        row(f"browser: verdict -> row in the table p50 ({res['browser_rows']} rows)",
            "browser_row_p50_ms", ".0f", " ms", "(report)", lambda v: True)
        row("browser: verdict -> row in the table p95", "browser_row_p95_ms", ".0f", " ms",
            "(report)", lambda v: True)
    error_row("scale")
    if "scale_runs" in res:
        size = f"{res['scale_runs']} runs, {res['scale_cases'] / 1e6:.1f}M case rows"
        rows.append((f"scale: {size}", f"phase took {res.get('scale_seconds', 0):.0f} s", "", ""))
        row("  run list req/s, new run every 100 ms", "scale_runlist_rps", ".0f", "", ">= 3000",
            lambda v: v >= 3000)
        row("  run list p99, new run every 100 ms", "scale_runlist_p99_ms", ".1f", " ms", "<= 50 ms",
            lambda v: v <= 50)
        for days in (7, 1, 30):
            cases = res.get(f"scale_cases_{days}d", 0)
            row(f"  GET /api/insights?days={days} ({cases:,} case rows in it)",
                f"scale_insights_{days}d_ms", ".1f", " ms", "<= 100 ms", lambda v: v <= 100)
        if res.get("scale_health_missing"):
            rows.append(("  GET /api/insights/environments?days=7", "n/a (endpoint missing)",
                         "<= 100 ms", ""))
        else:
            row("  GET /api/insights/environments?days=7", "scale_health_ms", ".1f", " ms",
                "<= 100 ms", lambda v: v <= 100)
        row("  GET /api/tests/history?nodeid=", "scale_history_test_ms", ".1f", " ms", "<= 100 ms",
            lambda v: v <= 100)
        row("  GET /api/tests/history?path=", "scale_history_file_ms", ".1f", " ms", "<= 100 ms",
            lambda v: v <= 100)
        half = res.get("scale_half_runs")
        grow = (f"; at {half} runs: {res['scale_half_bytes_per_run']:.0f} B"
                if half else "")
        info("  disk per run (test_runs with its indexes)", f"{res['scale_bytes_per_run']:.0f} B{grow}")
        grow = (f"; at {half} runs: {res['scale_half_bytes_per_case']:.0f} + "
                f"{res['scale_half_insight_bytes_per_case']:.0f} B" if half else "")
        info("  disk per case (run_cases + insights tables)",
             f"{res['scale_bytes_per_case']:.0f} + {res['scale_insight_bytes_per_case']:.0f} B{grow}")
    row("RSS idle", "rss_idle_mb", ".1f", " MB", "<= 30 MB", lambda v: v <= 30)
    row("RSS with ~1000 queued", "rss_queued_mb", ".1f", " MB", "<= 100 MB", lambda v: v <= 100)
    row("RSS during the big log (peak)", "rss_peak_biglog_mb", ".1f", " MB", "<= 100 MB", lambda v: v <= 100)
    row("RSS peak, any phase", "rss_peak_mb", ".1f", " MB", "<= 100 MB", lambda v: v <= 100)
    if res.get("spa_gzip_kb") is None and "spa_gzip_kb" in res:
        rows.append(("SPA .wasm gzipped", "not built", "<= 250 KB", "?"))
    else:
        row("SPA .wasm gzipped", "spa_gzip_kb", ".0f", " KB", "<= 250 KB", lambda v: v <= 250)

    w = [max(len(r[i]) for r in rows + [("figure", "measured", "target", "")]) for i in range(4)]
    lines = ["| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(("figure", "measured", "target", ""))) + " |",
             "|" + "|".join("-" * (x + 2) for x in w) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |")
    return "\n".join(lines), sum(1 for r in rows if r[3] in ("MISSED", "ERROR"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--binary", required=True)
    p.add_argument("--stamp", required=True)
    p.add_argument("--python", required=True)
    p.add_argument("--admin-url", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--psql", default="psql")
    p.add_argument("--pgbench", default="pgbench")
    p.add_argument("--wrk", default="wrk")
    p.add_argument("--browsers", default="browsers")
    p.add_argument("--phases",
                   default="dispatch,overhead,runlist,drain,biglog,insights,browsers,flood,"
                           "instances,browser,spa")
    quick = os.environ.get("BENCH_QUICK") == "1"
    env_int = lambda name, full, fast: int(os.environ.get(name, fast if quick else full))
    args = p.parse_args()
    args.reps = env_int("BENCH_REPS", 3, 1)
    args.dispatch_samples = env_int("BENCH_DISPATCH_SAMPLES", 100, 30)
    args.overhead_runs = env_int("BENCH_OVERHEAD_RUNS", 50, 10)
    args.rows = env_int("BENCH_ROWS", 100000, 100000)
    args.connections = env_int("BENCH_CONNECTIONS", 32, 32)
    args.wrk_secs = env_int("BENCH_WRK_SECS", 8, 3)
    args.wrk_304_secs = env_int("BENCH_WRK_304_SECS", 5, 3)
    args.drain_runs = env_int("BENCH_DRAIN_RUNS", 1000, 200)
    args.drain_timeout = env_int("BENCH_DRAIN_TIMEOUT", 900, 300)
    args.log_lines = env_int("BENCH_LOG_LINES", 200000, 200000)
    args.history_runs = env_int("BENCH_HISTORY_RUNS", 100000, 100000)
    args.browser_count = env_int("BENCH_BROWSERS", 1000, 1000)
    args.browser_secs = env_int("BENCH_BROWSER_SECS", 60, 20)
    args.flood_history_runs = env_int("BENCH_FLOOD_HISTORY_RUNS", 20000, 5000)
    args.scale_runs = env_int("BENCH_SCALE_RUNS", 1000000, 1000000)
    args.scale_tests = env_int("BENCH_SCALE_TESTS", 20, 20)
    args.scale_days = env_int("BENCH_SCALE_DAYS", 140, 140)
    args.instances = env_int("BENCH_INSTANCES", 3, 3)
    args.instances_runs = env_int("BENCH_INSTANCES_RUNS", 3000, 600)
    args.instances_timeout = env_int("BENCH_INSTANCES_TIMEOUT", 3600, 1200)
    args.browser_runs = env_int("BENCH_BROWSER_RUNS", 20, 5)
    args.browser_cases = env_int("BENCH_BROWSER_CASES", 5, 5)
    args.tests_root = os.path.join(args.work, "tests")
    os.makedirs(os.path.join(args.tests_root, "smoke"), exist_ok=True)
    os.makedirs(os.path.join(args.tests_root, "big"), exist_ok=True)
    os.makedirs(os.path.join(args.tests_root, "stream"), exist_ok=True)
    os.makedirs(os.path.join(args.tests_root, "browser"), exist_ok=True)
    with open(os.path.join(args.tests_root, "browser", "conftest.py"), "w") as f:
        f.write(VERDICTS_CONFTEST)
    with open(os.path.join(args.tests_root, VERDICTS), "w") as f:
        f.write(verdicts_test(args.browser_cases, 0.7))
    with open(os.path.join(args.tests_root, STREAMER), "w") as f:
        f.write(
            "import os\nimport time\n\n"
            "SECONDS = float(os.environ.get('BENCH_STREAM_SECS', '30'))\n\n\n"
            "def test_stream():\n"
            "    end = time.time() + SECONDS\n"
            "    i = 0\n"
            "    while time.time() < end:\n"
            "        print(f'stream line {i:06d} of a test that talks while it works', flush=True)\n"
            "        i += 1\n"
            "        time.sleep(0.02)\n")
    with open(os.path.join(args.tests_root, ONE_TEST), "w") as f:
        f.write("def test_one():\n    assert 1 + 1 == 2\n")
    with open(os.path.join(args.tests_root, BIG_LOG), "w") as f:
        f.write(
            "import os\nimport sys\n\n"
            "LINES = int(os.environ.get('BENCH_LOG_LINES', '200000'))\n\n\n"
            "def test_big_log(capsys):\n"
            "    # Printed live, as a chatty test would with -s.\n"
            "    with capsys.disabled():\n"
            "        for i in range(LINES):\n"
            "            sys.stdout.write(f'bench-line {i:06d} the quick brown fox jumps over the lazy dog\\n')\n"
            "        sys.stdout.flush()\n")
    os.makedirs(args.out, exist_ok=True)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pg = Pg(args.admin_url, args.psql, f"bench_{os.getpid()}")
    res = {"errors": {}}
    phases = args.phases.split(",")
    started = time.monotonic()
    # Peak RSS over every backend of the suite.
    peaks = []
    try:
        for name, fn in [("dispatch", phase_dispatch), ("overhead", phase_overhead),
                         ("runlist", phase_runlist), ("drain", phase_drain),
                         ("biglog", phase_biglog), ("insights", phase_insights),
                         ("browsers", phase_browsers), ("flood", phase_flood),
                         ("instances", phase_instances), ("browser", phase_browser),
                         ("scale", phase_scale)]:
            if name not in phases:
                continue
            busy = cpu_busy()
            res.setdefault("ambient_cpu_busy", {})[name] = busy
            log(f"--- {name} (other work keeps {busy * 100:.0f}% of the CPUs busy)")
            t = time.monotonic()
            try:
                fn(args, pg, res)
            except Interrupted:
                raise
            except Exception as e:
                res["errors"][name] = f"{type(e).__name__}: {e}"
                log(f"{name} failed: {e}")
            log(f"{name} took {time.monotonic() - t:.0f} s")
        if "spa" in phases:
            phase_spa(args, res)
    except Interrupted as e:
        log(f"interrupted ({e}); cleaning up")
        pg.drop_all()
        return 130
    finally:
        pg.drop_all()
    peaks = [v for k, v in res.items() if k.startswith("rss_") and k.endswith("_mb") and v == v]
    res["rss_peak_mb"] = max(peaks) if peaks else float("nan")
    res["suite_seconds"] = time.monotonic() - started
    text, missed = table(res, args)
    res["config"] = {k: v for k, v in vars(args).items() if isinstance(v, (int, str))}
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(text + "\n")
    print()
    print(text)
    print()
    for phase, why in res["errors"].items():
        print(f"{phase}: {why}")
    busy = list(res.get("ambient_cpu_busy", {}).values())
    if busy:
        print(f"other work on the machine kept {min(busy) * 100:.0f}-{max(busy) * 100:.0f}% of its "
              f"{os.cpu_count()} CPUs busy just before the phases; anything above a few % skews the figures")
    print(f"suite time {res['suite_seconds']:.0f} s; details in {os.path.relpath(args.out, args.root)}/latest.json")
    if os.environ.get("BENCH_STRICT") == "1" and missed:
        return 1
    return 2 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
