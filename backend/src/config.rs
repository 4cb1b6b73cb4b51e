//! The service's settings, read once from environment variables.

use std::path::PathBuf;
use std::time::Duration;

use crate::db::PoolSettings;
use crate::exec::webhooks::DeliverySettings;
use crate::http::browser_safety;
use shared::Role;

/// A secret setting: never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Who may use the service, and how callers prove who they are.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `AUTH=on` (the default): accounts, roles, tokens. Off: everyone is
    /// an admin, for a single user's local setup.
    pub enabled: bool,
    /// `ADMIN_TOKEN`: an admin API token with exactly this secret.
    pub admin_token: Option<Secret>,
    /// `ADMIN_PASSWORD`: the admin's password, set on first start.
    pub admin_password: Option<Secret>,
    /// `AUTH_PROXY_HEADER`: the header a single sign-on proxy names the
    /// user in (`X-Forwarded-User`), trusted only from `proxy_addrs`.
    pub proxy_header: Option<String>,
    /// `AUTH_PROXY_ADDRS`: the addresses (or `addr/prefix` networks) of
    /// the proxies whose header is believed.
    pub proxy_addrs: Vec<ipnet_lite::Network>,
    /// `AUTH_PROXY_DEFAULT_ROLE`: the role of a user the proxy names for
    /// the first time (`viewer`).
    pub proxy_default_role: Role,
    /// `SESSION_HOURS`: how long a login lasts (168).
    pub session_hours: i64,
    /// `LOGIN_MAX_FAILURES`: failed logins of one user name within
    /// `LOGIN_WINDOW_SECS` before its logins are refused with 429 (5).
    pub login_max_failures_per_user: i64,
    /// `LOGIN_MAX_FAILURES_PER_ADDRESS`: the same, per client address (30).
    pub login_max_failures_per_address: i64,
    /// `LOGIN_WINDOW_SECS` (900).
    pub login_window_secs: i64,
}

/// Networks of `AUTH_PROXY_ADDRS`, without another crate: an address and
/// how many of its leading bits must match.
pub mod ipnet_lite {
    use std::net::IpAddr;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Network {
        address: IpAddr,
        prefix: u32,
    }

    impl Network {
        pub fn parse(raw: &str) -> Result<Network, String> {
            let (address, prefix) = match raw.split_once('/') {
                Some((address, prefix)) => (address, Some(prefix)),
                None => (raw, None),
            };
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("{raw:?} is not an IP address or network"))?;
            let most = if address.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p
                    .parse::<u32>()
                    .ok()
                    .filter(|p| *p <= most)
                    .ok_or_else(|| format!("{raw:?}: the prefix must be 0 to {most}"))?,
                None => most,
            };
            Ok(Network { address, prefix })
        }

        pub fn contains(&self, other: IpAddr) -> bool {
            let other = match other {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(other, IpAddr::V4),
                v4 => v4,
            };
            match (self.address, other) {
                (IpAddr::V4(net), IpAddr::V4(addr)) => {
                    let mask = u32::MAX.checked_shl(32 - self.prefix).unwrap_or(0);
                    u32::from(net) & mask == u32::from(addr) & mask
                }
                (IpAddr::V6(net), IpAddr::V6(addr)) => {
                    let mask = u128::MAX.checked_shl(128 - self.prefix).unwrap_or(0);
                    u128::from(net) & mask == u128::from(addr) & mask
                }
                _ => false,
            }
        }
    }
}

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
    /// Start each run's interpreter before the run comes (`WARM_START`).
    pub warm_start: bool,
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
    pub auth: AuthSettings,
    /// `METRICS_BIND_ADDR`: a listener of its own that serves `/metrics`
    /// without credentials (for a Prometheus on a private network).
    pub metrics_bind_addr: Option<String>,
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
            warm_start: match var("WARM_START") {
                None => true,
                raw => parse_switch("WARM_START", raw)?,
            },
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
            auth: AuthSettings {
                enabled: match var("AUTH").as_deref().map(str::trim) {
                    None | Some("on") => true,
                    Some("off") => false,
                    Some(other) => return Err(format!("AUTH must be on or off, not {other:?}")),
                },
                admin_token: match std::env::var("ADMIN_TOKEN").ok().filter(|v| !v.is_empty()) {
                    Some(token) if token.len() < 16 => {
                        return Err("ADMIN_TOKEN must be at least 16 characters".into())
                    }
                    token => token.map(Secret::new),
                },
                admin_password: std::env::var("ADMIN_PASSWORD")
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|password| {
                        shared::identity::password(&password)
                            .map(|()| Secret::new(password))
                            .map_err(|why| format!("ADMIN_PASSWORD {why}"))
                    })
                    .transpose()?,
                proxy_header: var("AUTH_PROXY_HEADER").map(|h| h.trim().to_ascii_lowercase()),
                proxy_addrs: var("AUTH_PROXY_ADDRS")
                    .unwrap_or_default()
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|a| !a.is_empty())
                    .map(|a| {
                        ipnet_lite::Network::parse(a).map_err(|e| format!("AUTH_PROXY_ADDRS: {e}"))
                    })
                    .collect::<Result<_, _>>()?,
                proxy_default_role: match var("AUTH_PROXY_DEFAULT_ROLE") {
                    Some(raw) => Role::parse(raw.trim()).ok_or_else(|| {
                        format!(
                            "AUTH_PROXY_DEFAULT_ROLE must be viewer, member or admin, not {raw:?}"
                        )
                    })?,
                    None => Role::Viewer,
                },
                session_hours: number("SESSION_HOURS", 168)?.clamp(1, 24 * 365) as i64,
                login_max_failures_per_user: number("LOGIN_MAX_FAILURES", 5)?.clamp(1, 10_000)
                    as i64,
                login_max_failures_per_address: number("LOGIN_MAX_FAILURES_PER_ADDRESS", 30)?
                    .clamp(1, 100_000) as i64,
                login_window_secs: number("LOGIN_WINDOW_SECS", 900)?.clamp(1, 7 * 24 * 3600) as i64,
            },
            metrics_bind_addr: var("METRICS_BIND_ADDR"),
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
    use super::ipnet_lite::Network;
    use super::parse_runner_labels;

    #[test]
    fn proxy_networks_match_their_addresses_only() {
        let one = Network::parse("10.1.2.3").unwrap();
        assert!(one.contains("10.1.2.3".parse().unwrap()));
        assert!(!one.contains("10.1.2.4".parse().unwrap()));
        let net = Network::parse("192.168.0.0/16").unwrap();
        assert!(net.contains("192.168.7.1".parse().unwrap()));
        assert!(net.contains("::ffff:192.168.7.1".parse().unwrap()));
        assert!(!net.contains("192.169.0.1".parse().unwrap()));
        assert!(Network::parse("::1")
            .unwrap()
            .contains("::1".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("proxy").is_err());
    }

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
