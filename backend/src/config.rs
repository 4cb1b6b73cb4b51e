//! The service's settings, read once from environment variables.

use std::path::PathBuf;
use std::time::Duration;

use crate::db::PoolSettings;
use crate::exec::webhooks::DeliverySettings;
use crate::http::browser_safety;

/// The largest value of each setting that is a duration or a size.
const MOST: [(&str, u64); 17] = [
    ("HEALTH_CHECK_SECS", 24 * 3600),
    ("LEASE_SECS", 24 * 3600),
    ("RUN_TIMEOUT_SECS", 7 * 24 * 3600),
    ("KILL_GRACE_MS", 3600 * 1000),
    ("SHUTDOWN_GRACE_SECS", 24 * 3600),
    ("SCHEDULER_TICK_MS", 3600 * 1000),
    ("DB_STATEMENT_TIMEOUT_MS", 24 * 3600 * 1000),
    ("MAX_PARALLEL_RUNS", 1000),
    ("UPLOAD_MAX_BYTES", 1 << 30),
    ("LOG_MAX_BYTES", 1 << 32),
    ("WEBHOOK_TIMEOUT_MS", 3600 * 1000),
    ("WEBHOOK_RETRY_BASE_MS", 24 * 3600 * 1000),
    ("WEBHOOK_GIVE_UP_SECS", 30 * 24 * 3600),
    ("SCHEDULE_TICK_MS", 3600 * 1000),
    ("ARTIFACTS_MAX_BYTES", 1 << 34),
    ("RETENTION_DAYS", 100 * 366),
    ("RETENTION_INTERVAL_SECS", 7 * 24 * 3600),
];

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub bind_addr: String,
    pub tests_root: PathBuf,
    pub max_parallel_runs: usize,
    pub run_timeout: Duration,
    pub lease_secs: i64,
    pub upload_max_bytes: u64,
    pub log_max_bytes: usize,
    pub python: String,
    /// Names this instance in the leases it holds. Left unset, it becomes
    /// host name and port once the port is bound: stable across restarts,
    /// so a restarted instance finishes its past life's runs at once.
    pub instance_id: String,
    /// How long a cancelled or timed-out test gets after SIGINT and after
    /// SIGTERM before the next, harsher signal.
    pub kill_grace: Duration,
    /// How long running tests may go on after SIGTERM to the service.
    pub shutdown_grace: Duration,
    /// How often the scheduler looks for work it was not woken for: leases
    /// that expired, notifications missed while not listening.
    pub tick: Duration,
    /// Connections of the HTTP requests' pool.
    pub db_pool_size: u32,
    /// The longest statement an HTTP request may run.
    pub statement_timeout: Duration,
    /// Queued runs at most, across all environments; past it, new runs are
    /// refused with 429.
    pub max_queued_runs: i64,
    /// `PUBLIC_URL` and `ALLOWED_HOSTS`: which origin browsers may change
    /// things from, and which host names the service answers to.
    pub browser: browser_safety::Policy,
    /// `RUN_AS_USER`: the user (name or uid) tests run as, when the service
    /// runs as root; checked at start-up.
    pub run_as_user: Option<String>,
    /// `RUNNER_LABELS`: this instance claims only environments with one of
    /// these labels (those it can reach); `None`, every environment.
    pub runner_labels: Option<Vec<String>>,
    /// How webhook deliveries are sent and retried (`WEBHOOK_TIMEOUT_MS`,
    /// `WEBHOOK_RETRY_BASE_MS`, `WEBHOOK_GIVE_UP_SECS`).
    pub webhooks: DeliverySettings,
    /// How often due schedules are looked for (`SCHEDULE_TICK_MS`).
    pub schedule_tick: Duration,
    /// `ARTIFACTS_MAX_BYTES`: what a run's tests leave in
    /// `TEST_ARTIFACTS_DIR` is kept up to this many bytes.
    pub artifacts_max_bytes: u64,
    /// `RETENTION_DAYS`: runs finished longer ago lose their log, cases
    /// and artifacts unless pinned; `None` (unset or 0) keeps everything.
    pub retention_days: Option<u32>,
    /// `RETENTION_INTERVAL_SECS`: how often the retention pass looks for
    /// runs to prune (old insights are pruned hourly).
    pub retention_interval: Duration,
    /// `HEALTH_AUTO_MAINTENANCE=on`: suspect environments are put into
    /// maintenance by themselves (off unless set).
    pub health_auto_maintenance: bool,
    /// `HEALTH_CHECK_SECS`: how often that rule looks.
    pub health_check_interval: Duration,
}

/// An on/off setting: `on`, `off` (and the usual spellings), or unset.
fn parse_switch(name: &str, raw: Option<String>) -> Result<bool, String> {
    match raw
        .as_deref()
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("off" | "0" | "false" | "no") => Ok(false),
        Some("on" | "1" | "true" | "yes") => Ok(true),
        Some(other) => Err(format!("{name} must be on or off, not {other:?}")),
    }
}

/// `RUNNER_LABELS`: labels separated by commas or spaces.
fn parse_runner_labels(raw: &str) -> Result<Vec<String>, String> {
    let labels: Vec<String> = raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|label| !label.is_empty())
        .map(str::to_string)
        .collect();
    shared::validate::labels(&labels).map_err(|why| format!("RUNNER_LABELS: {why}"))
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str, default: u64| -> Result<u64, String> {
            let value = match var(name) {
                Some(raw) => raw
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{name} must be a whole number, not {raw:?}"))?,
                None => default,
            };
            // Every setting is a count or a duration: beyond these, a
            // value is a typo, and a clock reading plus it could overflow.
            let most = MOST
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(u64::MAX, |(_, m)| *m);
            if value > most {
                return Err(format!("{name} must be at most {most}, not {value}"));
            }
            Ok(value)
        };
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let lease_secs = number("LEASE_SECS", 30)?.max(1);
        let max_parallel_runs = number("MAX_PARALLEL_RUNS", cpus)?.max(1);
        // Two queries per core keep the database busy; more only queue in
        // it and lengthen every answer's tail. Runs have a pool of their own.
        let default_pool = (2 * cpus).max(4);
        Ok(Config {
            database_url: var("DATABASE_URL")
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:54329/test_executor".into()),
            bind_addr: var("BIND_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into()),
            tests_root: PathBuf::from(var("TESTS_ROOT").unwrap_or_else(|| "sample-tests".into())),
            max_parallel_runs: max_parallel_runs as usize,
            run_timeout: Duration::from_secs(number("RUN_TIMEOUT_SECS", 1800)?.max(1)),
            lease_secs: lease_secs as i64,
            upload_max_bytes: number("UPLOAD_MAX_BYTES", 1024 * 1024)?,
            log_max_bytes: number("LOG_MAX_BYTES", 16 * 1024 * 1024)?.max(4096) as usize,
            python: var("PYTHON").unwrap_or_else(|| "python3".into()),
            instance_id: var("INSTANCE_ID").unwrap_or_default(),
            kill_grace: Duration::from_millis(number("KILL_GRACE_MS", 3000)?),
            shutdown_grace: Duration::from_secs(number("SHUTDOWN_GRACE_SECS", 30)?),
            tick: Duration::from_millis(number("SCHEDULER_TICK_MS", 5000)?.max(10)),
            db_pool_size: number("DB_POOL_SIZE", default_pool)?.clamp(2, 200) as u32,
            statement_timeout: Duration::from_millis(
                number("DB_STATEMENT_TIMEOUT_MS", 15_000)?.max(100),
            ),
            max_queued_runs: number("MAX_QUEUED_RUNS", 10_000)?.max(1) as i64,
            browser: browser_safety::Policy::parse(
                var("PUBLIC_URL").as_deref(),
                var("ALLOWED_HOSTS").as_deref(),
            )?,
            run_as_user: var("RUN_AS_USER").map(|user| user.trim().to_string()),
            runner_labels: var("RUNNER_LABELS")
                .map(|raw| parse_runner_labels(&raw))
                .transpose()?,
            webhooks: DeliverySettings {
                timeout: Duration::from_millis(number("WEBHOOK_TIMEOUT_MS", 10_000)?.max(100)),
                retry_base: Duration::from_millis(number("WEBHOOK_RETRY_BASE_MS", 10_000)?.max(10)),
                retry_cap: Duration::from_secs(3600),
                give_up_after: Duration::from_secs(number("WEBHOOK_GIVE_UP_SECS", 24 * 3600)?),
                expiring_window: Duration::from_secs(300),
            },
            schedule_tick: Duration::from_millis(number("SCHEDULE_TICK_MS", 1000)?.max(10)),
            artifacts_max_bytes: number("ARTIFACTS_MAX_BYTES", 50 * 1024 * 1024)?,
            retention_days: Some(number("RETENTION_DAYS", 0)? as u32).filter(|days| *days > 0),
            retention_interval: Duration::from_secs(number("RETENTION_INTERVAL_SECS", 10)?.max(1)),
            health_auto_maintenance: parse_switch(
                "HEALTH_AUTO_MAINTENANCE",
                var("HEALTH_AUTO_MAINTENANCE"),
            )?,
            health_check_interval: Duration::from_secs(number("HEALTH_CHECK_SECS", 60)?.max(1)),
        })
    }

    /// The lease as a duration on the local clock.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs as u64)
    }

    /// The pool HTTP requests use: they wait a little for a connection,
    /// then answer 503.
    pub fn http_pool(&self) -> PoolSettings {
        PoolSettings {
            max_size: self.db_pool_size,
            checkout: Duration::from_millis(800),
            statement_timeout: self.statement_timeout,
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction: Duration::from_secs(30),
        }
    }

    /// The pool of the webhook sender and the schedules' tick: small, and
    /// apart from requests and runs, so neither can starve the other.
    pub fn background_pool(&self) -> PoolSettings {
        PoolSettings {
            max_size: 3,
            checkout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction: Duration::from_secs(30),
        }
    }

    /// The pool of runs and the scheduler (lease renewals, log writes,
    /// claims, finishes), which no flood of requests can take: one
    /// connection per parallel run, and two for the scheduler. A finish
    /// may write many cases: its statements get longer.
    pub fn runner_pool(&self) -> PoolSettings {
        PoolSettings {
            max_size: self.max_parallel_runs as u32 + 2,
            checkout: (self.lease() / 4).max(Duration::from_millis(500)),
            statement_timeout: Duration::from_secs(60),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// The retention pass's own connection.
    pub fn retention_pool(&self) -> PoolSettings {
        PoolSettings {
            max_size: 1,
            checkout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(120),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction: Duration::from_secs(30),
        }
    }
}

/// `host:port` of a bound instance, or `host-pid` for an ephemeral port
/// (which no restart can get back).
pub fn default_instance_id(port: u16, ephemeral: bool) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    if ephemeral {
        format!("{host}-pid{}", std::process::id())
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_runner_labels;

    #[test]
    fn runner_labels_are_a_checked_list() {
        assert_eq!(
            parse_runner_labels(" lab, office  eu-west ").unwrap(),
            vec!["eu-west", "lab", "office"]
        );
        assert!(parse_runner_labels("lab, Lab")
            .unwrap_err()
            .contains("RUNNER_LABELS"));
        assert!(parse_runner_labels("lab,lab").is_err(), "twice");
    }
}
