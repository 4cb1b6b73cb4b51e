//! What `/metrics` shows, in Prometheus' text format, through the
//! `prometheus` crate: the HTTP requests and finished runs this process
//! counted, the process itself (its standard process collector: memory,
//! CPU, file descriptors, threads), and figures taken at scrape time (runs
//! by status, queues and busy environments from the database, the
//! connection pool, glibc's heap).
//!
//! Every label has a bounded set of values: methods outside the standard
//! ones are `OTHER`, routes are patterns (unknown paths share
//! `unmatched`), statuses and environment ids are few.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::process_collector::ProcessCollector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use shared::RunStatus;

pub use crate::db::metrics::DatabaseFigures;

/// Upper bounds (seconds) of the HTTP request duration buckets.
const HTTP_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Upper bounds (seconds) of the run duration buckets.
const RUN_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// The metrics this process keeps between scrapes.
pub struct Metrics {
    registry: Registry,
    http_duration: HistogramVec,
    http_in_flight: IntGauge,
    run_duration: HistogramVec,
}

/// The process-wide metrics, as Prometheus clients keep them.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Builds a metric whose definition is fixed in this file, so that it
/// cannot fail at run time.
fn fixed<T>(made: prometheus::Result<T>) -> T {
    #[allow(clippy::expect_used)]
    made.expect("a well-formed metric definition")
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let http_duration = fixed(HistogramVec::new(
            HistogramOpts::new(
                "test_executor_http_request_duration_seconds",
                "HTTP requests answered by this process, by method, route pattern and status.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["method", "route", "status"],
        ));
        let http_in_flight = fixed(IntGauge::new(
            "test_executor_http_requests_in_flight",
            "HTTP requests being answered by this process.",
        ));
        let run_duration = fixed(HistogramVec::new(
            HistogramOpts::new(
                "test_executor_run_duration_seconds",
                "Runs this process ran to their end, by final status.",
            )
            .buckets(RUN_BUCKETS.to_vec()),
            &["status"],
        ));
        // Registration fails only for duplicate names, which these are not.
        let _ = registry.register(Box::new(http_duration.clone()));
        let _ = registry.register(Box::new(http_in_flight.clone()));
        let _ = registry.register(Box::new(run_duration.clone()));
        let _ = registry.register(Box::new(ProcessCollector::for_self()));
        Metrics {
            registry,
            http_duration,
            http_in_flight,
            run_duration,
        }
    }

    pub fn request_started(&self) {
        self.http_in_flight.inc();
    }

    pub fn request_done(&self) {
        self.http_in_flight.dec();
    }

    pub fn request_finished(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http_duration
            .with_label_values(&[known_method(method), route, &status.to_string()])
            .observe(took.as_secs_f64());
    }

    /// A run this process ran has its final status written.
    pub fn run_finished(&self, status: RunStatus, took: Duration) {
        self.run_duration
            .with_label_values(&[status.as_str()])
            .observe(took.as_secs_f64());
    }
}

/// The method as a label: one of the standard ones, else `OTHER`, so that
/// invented methods cannot make a series each.
fn known_method(method: &str) -> &str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("OTHER")
}

/// What the service itself knows at scrape time.
#[derive(Debug, Default)]
pub struct ServiceFigures {
    pub instance: String,
    pub version: &'static str,
    pub local_runs: usize,
    pub max_parallel_runs: usize,
    /// Each connection pool: its name, connections, idle ones, and size.
    pub pools: Vec<PoolFigures>,
}

/// One connection pool at scrape time.
#[derive(Debug, Default)]
pub struct PoolFigures {
    /// `http` (requests) or `runner` (runs and the scheduler).
    pub name: &'static str,
    pub connections: u32,
    pub idle: u32,
    pub max: u32,
}

/// The whole exposition; `database` is `None` when it cannot be reached,
/// and then no database figure is shown (rather than a stale one).
pub fn render(service: &ServiceFigures, database: Option<&DatabaseFigures>) -> String {
    let scrape = Registry::new();
    let gauge = |name: &str, help: &str, value: i64| {
        let gauge = fixed(IntGauge::new(name, help));
        gauge.set(value);
        let _ = scrape.register(Box::new(gauge));
    };
    let gauges = |name: &str, help: &str, label: &str, values: &[(String, i64)]| {
        let vec = fixed(IntGaugeVec::new(Opts::new(name, help), &[label]));
        for (label_value, value) in values {
            vec.with_label_values(&[label_value.as_str()]).set(*value);
        }
        let _ = scrape.register(Box::new(vec));
    };
    let info = fixed(IntGaugeVec::new(
        Opts::new(
            "test_executor_info",
            "Always 1; the labels say which build and instance this is.",
        ),
        &["version", "instance"],
    ));
    info.with_label_values(&[service.version, &service.instance])
        .set(1);
    let _ = scrape.register(Box::new(info));
    gauge(
        "test_executor_database_up",
        "1 if the database answered this scrape's queries.",
        i64::from(database.is_some()),
    );
    if let Some(db) = database {
        let by_status: Vec<(String, i64)> = RunStatus::ALL
            .iter()
            .map(|status| {
                let count = db
                    .runs_by_status
                    .iter()
                    .find(|(s, _)| s == status.as_str())
                    .map_or(0, |(_, n)| *n);
                (status.as_str().to_string(), count)
            })
            .collect();
        gauges(
            "test_executor_runs",
            "Runs in the database, by status (all instances).",
            "status",
            &by_status,
        );
        let queues: Vec<(String, i64)> = db
            .queued_by_environment
            .iter()
            .map(|(id, queued)| (id.to_string(), *queued))
            .collect();
        gauges(
            "test_executor_queue_depth",
            "Queued runs waiting for each environment.",
            "environment_id",
            &queues,
        );
        gauge(
            "test_executor_environments_busy",
            "Environments running a test now (all instances).",
            db.busy_environments,
        );
        gauge(
            "test_executor_environments",
            "Environments that exist.",
            db.environments,
        );
        gauge(
            "test_executor_database_size_bytes",
            "Size of the service's database on disk (pg_database_size).",
            db.database_bytes,
        );
        gauge(
            "test_executor_artifacts_bytes",
            "Bytes of run artifacts kept in the database.",
            db.artifact_bytes,
        );
    }
    gauge(
        "test_executor_local_runs",
        "Runs this process is running now.",
        service.local_runs as i64,
    );
    gauge(
        "test_executor_max_parallel_runs",
        "MAX_PARALLEL_RUNS of this process.",
        service.max_parallel_runs as i64,
    );
    for pool in &service.pools {
        // The requests' pool keeps the names it always had.
        let (prefix, what) = match pool.name {
            "http" => ("test_executor_db_pool", "DB_POOL_SIZE (HTTP requests)"),
            _ => (
                "test_executor_runner_pool",
                "MAX_PARALLEL_RUNS + 2 (runs and the scheduler)",
            ),
        };
        let in_use = pool.connections.saturating_sub(pool.idle);
        gauges(
            &format!("{prefix}_connections"),
            &format!("Connections of the pool of {what}, by state (in_use = checked out)."),
            "state",
            &[
                ("idle".into(), i64::from(pool.idle)),
                ("in_use".into(), i64::from(in_use)),
            ],
        );
        gauge(
            &format!("{prefix}_max_connections"),
            &format!("The most connections the pool of {what} opens."),
            i64::from(pool.max),
        );
    }
    if let Some((in_use, free)) = heap() {
        gauges(
            "test_executor_heap_bytes",
            "glibc malloc heap: in_use (allocated, incl. mmapped blocks), free (kept by the allocator).",
            "state",
            &[("in_use".into(), in_use), ("free".into(), free)],
        );
    }
    let mut families = global().registry.gather();
    families.extend(scrape.gather());
    let mut out = Vec::with_capacity(16 * 1024);
    // Encoding into memory fails only on metric families that cannot be
    // written, which the ones above are not.
    let _ = TextEncoder::new().encode(&families, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// glibc's own account of the heap: what the program holds versus what
/// the allocator keeps free. RSS growing with `in_use` flat is
/// fragmentation or memory outside malloc; `in_use` growing is a leak.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap() -> Option<(i64, i64)> {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    let in_use = i64::try_from(info.uordblks + info.hblkhd).ok()?;
    Some((in_use, i64::try_from(info.fordblks).ok()?))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap() -> Option<(i64, i64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_an_infinite_bucket() {
        global().run_finished(RunStatus::Cancelled, Duration::from_millis(700));
        global().run_finished(RunStatus::Cancelled, Duration::from_secs(4000));
        let text = render(&ServiceFigures::default(), None);
        for line in [
            "test_executor_run_duration_seconds_bucket{status=\"cancelled\",le=\"0.5\"} 0",
            "test_executor_run_duration_seconds_bucket{status=\"cancelled\",le=\"1\"} 1",
            "test_executor_run_duration_seconds_bucket{status=\"cancelled\",le=\"3600\"} 1",
            "test_executor_run_duration_seconds_bucket{status=\"cancelled\",le=\"+Inf\"} 2",
            "test_executor_run_duration_seconds_count{status=\"cancelled\"} 2",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    #[test]
    fn the_process_reports_memory_and_descriptors() {
        let text = render(&ServiceFigures::default(), None);
        for name in [
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_threads ",
            "test_executor_database_up 0",
            "test_executor_heap_bytes{state=\"in_use\"}",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
        assert!(
            !text.contains("test_executor_runs{"),
            "no stale database figures"
        );
    }

    #[test]
    fn label_values_are_escaped_and_methods_bounded() {
        let service = ServiceFigures {
            instance: "a\"b\\c\nd".into(),
            ..ServiceFigures::default()
        };
        let text = render(&service, None);
        assert!(text.contains("instance=\"a\\\"b\\\\c\\nd\""), "{text}");
        assert_eq!(known_method("GET"), "GET");
        assert_eq!(known_method("BREW"), "OTHER");
    }
}
