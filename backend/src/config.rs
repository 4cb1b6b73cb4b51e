//! The service's settings, read once from environment variables.

use std::path::PathBuf;
use std::time::Duration;

use crate::http::browser_safety;

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
    pub db_pool_size: u32,
    /// `PUBLIC_URL` and `ALLOWED_HOSTS`: which origin browsers may change
    /// things from, and which host names the service answers to.
    pub browser: browser_safety::Policy,
    /// `RUN_AS_USER`: the user (name or uid) tests run as, when the service
    /// runs as root; checked at start-up.
    pub run_as_user: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match var(name) {
                Some(raw) => raw
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{name} must be a whole number, not {raw:?}")),
                None => Ok(default),
            }
        };
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let lease_secs = number("LEASE_SECS", 30)?.max(1);
        let max_parallel_runs = number("MAX_PARALLEL_RUNS", cpus)?.max(1);
        // Two queries per core keep the database busy; more only queue in
        // it and lengthen every answer's tail. Plus one for each running
        // run's log flushes and lease renewals.
        let default_pool = (2 * cpus + max_parallel_runs).max(4);
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
            browser: browser_safety::Policy::parse(
                var("PUBLIC_URL").as_deref(),
                var("ALLOWED_HOSTS").as_deref(),
            )?,
            run_as_user: var("RUN_AS_USER").map(|user| user.trim().to_string()),
        })
    }

    /// The lease as a duration on the local clock.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs as u64)
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
