//! What `/metrics` shows, in Prometheus' text format: counters and
//! histograms this process keeps (HTTP requests, finished runs), figures
//! read from the database at scrape time (runs by status, queues, busy
//! environments), the connection pool, and the process itself (memory,
//! file descriptors, threads), which is where a slow leak shows first.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use shared::RunStatus;

/// Upper bounds (seconds) of the HTTP request duration buckets.
const HTTP_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Upper bounds (seconds) of the run duration buckets.
const RUN_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; the last one is +Inf.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let separator = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count;
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{separator}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// One HTTP series: method, route pattern (never the raw path, whose ids
/// would make a series per run), status.
type HttpKey = (String, String, u16);

/// The counters and histograms of this process.
pub struct Registry {
    http: Mutex<BTreeMap<HttpKey, Histogram>>,
    runs: Mutex<BTreeMap<&'static str, Histogram>>,
    in_flight: std::sync::atomic::AtomicI64,
}

/// The process-wide registry, as Prometheus clients keep one.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        http: Mutex::default(),
        runs: Mutex::default(),
        in_flight: std::sync::atomic::AtomicI64::new(0),
    })
}

impl Registry {
    pub fn request_started(&self) {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn request_done(&self) {
        self.in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn request_finished(&self, method: &str, route: &str, status: u16, took: Duration) {
        if let Ok(mut http) = self.http.lock() {
            http.entry((method.to_string(), route.to_string(), status))
                .or_insert_with(|| Histogram::new(&HTTP_BUCKETS))
                .observe(took.as_secs_f64());
        }
    }

    /// A run this process ran has its final status written.
    pub fn run_finished(&self, status: RunStatus, took: Duration) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.entry(status.as_str())
                .or_insert_with(|| Histogram::new(&RUN_BUCKETS))
                .observe(took.as_secs_f64());
        }
    }

    fn write(&self, out: &mut String) {
        help(
            out,
            "test_executor_http_requests_in_flight",
            "gauge",
            "HTTP requests being answered by this process.",
        );
        let in_flight = self.in_flight.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(out, "test_executor_http_requests_in_flight {in_flight}");

        help(
            out,
            "test_executor_http_request_duration_seconds",
            "histogram",
            "HTTP requests answered by this process, by method, route pattern and status.",
        );
        if let Ok(http) = self.http.lock() {
            for ((method, route, status), histogram) in http.iter() {
                let labels = format!(
                    "method=\"{}\",route=\"{}\",status=\"{status}\"",
                    escape(method),
                    escape(route)
                );
                histogram.write(out, "test_executor_http_request_duration_seconds", &labels);
            }
        }

        help(
            out,
            "test_executor_run_duration_seconds",
            "histogram",
            "Runs this process ran to their end, by final status.",
        );
        if let Ok(runs) = self.runs.lock() {
            for (status, histogram) in runs.iter() {
                let labels = format!("status=\"{status}\"");
                histogram.write(out, "test_executor_run_duration_seconds", &labels);
            }
        }
    }
}

/// Figures read from the database at scrape time.
#[derive(Debug, Default)]
pub struct DatabaseFigures {
    pub runs_by_status: Vec<(String, i64)>,
    /// Queued runs of each environment, every environment listed.
    pub queued_by_environment: Vec<(i32, i64)>,
    pub busy_environments: i64,
    pub environments: i64,
}

/// What the service itself knows at scrape time.
#[derive(Debug, Default)]
pub struct ServiceFigures {
    pub instance: String,
    pub version: &'static str,
    pub local_runs: usize,
    pub max_parallel_runs: usize,
    pub pool_connections: u32,
    pub pool_idle: u32,
    pub pool_max: u32,
}

/// The whole exposition; `database` is `None` when it cannot be reached.
pub fn render(service: &ServiceFigures, database: Option<&DatabaseFigures>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    help(
        &mut out,
        "test_executor_info",
        "gauge",
        "Always 1; the labels say which build and instance this is.",
    );
    let _ = writeln!(
        out,
        "test_executor_info{{version=\"{}\",instance=\"{}\"}} 1",
        escape(service.version),
        escape(&service.instance)
    );

    help(
        &mut out,
        "test_executor_database_up",
        "gauge",
        "1 if the database answered this scrape's queries.",
    );
    let _ = writeln!(
        out,
        "test_executor_database_up {}",
        u8::from(database.is_some())
    );
    if let Some(db) = database {
        write_database(&mut out, db);
    }

    help(
        &mut out,
        "test_executor_local_runs",
        "gauge",
        "Runs this process is running now.",
    );
    let _ = writeln!(out, "test_executor_local_runs {}", service.local_runs);
    help(
        &mut out,
        "test_executor_max_parallel_runs",
        "gauge",
        "MAX_PARALLEL_RUNS of this process.",
    );
    let _ = writeln!(
        out,
        "test_executor_max_parallel_runs {}",
        service.max_parallel_runs
    );

    help(
        &mut out,
        "test_executor_db_pool_connections",
        "gauge",
        "Connections of the pool, by state (in_use = checked out by a request or a run).",
    );
    let in_use = service.pool_connections.saturating_sub(service.pool_idle);
    let _ = writeln!(
        out,
        "test_executor_db_pool_connections{{state=\"idle\"}} {}",
        service.pool_idle
    );
    let _ = writeln!(
        out,
        "test_executor_db_pool_connections{{state=\"in_use\"}} {in_use}"
    );
    help(
        &mut out,
        "test_executor_db_pool_max_connections",
        "gauge",
        "DB_POOL_SIZE: the most connections the pool opens.",
    );
    let _ = writeln!(
        out,
        "test_executor_db_pool_max_connections {}",
        service.pool_max
    );

    global().write(&mut out);
    write_process(&mut out);
    out
}

fn write_database(out: &mut String, db: &DatabaseFigures) {
    help(
        out,
        "test_executor_runs",
        "gauge",
        "Runs in the database, by status (all instances).",
    );
    for status in RunStatus::ALL {
        let count = db
            .runs_by_status
            .iter()
            .find(|(s, _)| s == status.as_str())
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "test_executor_runs{{status=\"{status}\"}} {count}");
    }
    help(
        out,
        "test_executor_queue_depth",
        "gauge",
        "Queued runs waiting for each environment.",
    );
    for (environment_id, queued) in &db.queued_by_environment {
        let _ = writeln!(
            out,
            "test_executor_queue_depth{{environment_id=\"{environment_id}\"}} {queued}"
        );
    }
    help(
        out,
        "test_executor_environments_busy",
        "gauge",
        "Environments running a test now (all instances).",
    );
    let _ = writeln!(
        out,
        "test_executor_environments_busy {}",
        db.busy_environments
    );
    help(
        out,
        "test_executor_environments",
        "gauge",
        "Environments that exist.",
    );
    let _ = writeln!(out, "test_executor_environments {}", db.environments);
}

/// The process as the kernel (and the allocator) sees it, under the names
/// Prometheus' own client libraries use.
fn write_process(out: &mut String) {
    let page_size = sysconf(libc::_SC_PAGESIZE).unwrap_or(4096);
    let ticks = sysconf(libc::_SC_CLK_TCK).unwrap_or(100);
    if let Some(stat) = proc_stat() {
        help(
            out,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent.",
        );
        let cpu = (stat.utime + stat.stime) as f64 / ticks as f64;
        let _ = writeln!(out, "process_cpu_seconds_total {cpu}");
        help(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size (RSS).",
        );
        let _ = writeln!(
            out,
            "process_resident_memory_bytes {}",
            stat.rss_pages * page_size
        );
        help(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size.",
        );
        let _ = writeln!(out, "process_virtual_memory_bytes {}", stat.vsize);
        help(
            out,
            "process_threads",
            "gauge",
            "Threads of the process (HTTP workers, the blocking pool, run threads).",
        );
        let _ = writeln!(out, "process_threads {}", stat.threads);
        if let Some(boot) = boot_time() {
            help(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since the Unix epoch.",
            );
            let start = boot as f64 + stat.start_ticks as f64 / ticks as f64;
            let _ = writeln!(out, "process_start_time_seconds {start}");
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        help(
            out,
            "process_open_fds",
            "gauge",
            "Open file descriptors (sockets, pipes of running tests, files).",
        );
        // Minus the one reading the directory.
        let open = fds.count().saturating_sub(1);
        let _ = writeln!(out, "process_open_fds {open}");
    }
    if let Some(max) = max_fds() {
        help(
            out,
            "process_max_fds",
            "gauge",
            "Limit on open file descriptors.",
        );
        let _ = writeln!(out, "process_max_fds {max}");
    }
    write_heap(out);
}

/// glibc's own account of the heap: what the program holds versus what
/// the allocator keeps free. RSS growing with `in_use` flat is
/// fragmentation or memory outside malloc; `in_use` growing is a leak.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn write_heap(out: &mut String) {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    help(
        out,
        "test_executor_heap_bytes",
        "gauge",
        "glibc malloc heap: in_use (allocated, incl. mmapped blocks), free (kept by the allocator).",
    );
    let _ = writeln!(
        out,
        "test_executor_heap_bytes{{state=\"in_use\"}} {}",
        info.uordblks + info.hblkhd
    );
    let _ = writeln!(
        out,
        "test_executor_heap_bytes{{state=\"free\"}} {}",
        info.fordblks
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn write_heap(_out: &mut String) {}

struct ProcStat {
    utime: u64,
    stime: u64,
    threads: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

/// `/proc/self/stat`, whose second field (the command) may hold spaces.
fn proc_stat() -> Option<ProcStat> {
    let raw = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &raw[raw.rfind(')')? + 1..];
    // Fields from the third on (state is field 3, index 0 here).
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(ProcStat {
        utime: field(14)?,
        stime: field(15)?,
        threads: field(20)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

fn max_fds() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|line| line.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf only reads a system constant.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|v| *v > 0)
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_an_infinite_bucket() {
        let mut histogram = Histogram::new(&[1.0, 5.0]);
        for value in [0.5, 2.0, 3.0, 10.0] {
            histogram.observe(value);
        }
        let mut out = String::new();
        histogram.write(&mut out, "x", "a=\"b\"");
        assert_eq!(
            out,
            "x_bucket{a=\"b\",le=\"1\"} 1\nx_bucket{a=\"b\",le=\"5\"} 3\n\
             x_bucket{a=\"b\",le=\"+Inf\"} 4\nx_sum{a=\"b\"} 15.5\nx_count{a=\"b\"} 4\n"
        );
    }

    #[test]
    fn the_process_reports_memory_and_descriptors() {
        let text = render(&ServiceFigures::default(), None);
        for name in [
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_threads ",
            "test_executor_database_up 0",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
