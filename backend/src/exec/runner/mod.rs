//! Runs one claimed test run on its own thread: starts pytest, streams its
//! output into the log, keeps the lease alive, obeys cancel and time-out,
//! and writes the outcome, all under the run's fence.

pub mod junit;
pub mod log;
pub mod output;
pub mod supervision;

use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::validate::TestPath;
use shared::{RunStatus, RunSummary};

use crate::catalog::TestsRoot;
use crate::config::Config;
use crate::db::leases::{self, Claim, Outcome};
use crate::db::PgPool;
use crate::sys::process;
use crate::telemetry::metrics;
use supervision::{Event, RunControl, StopReason, Supervision};

/// A JUnit report larger than this is parsed into cases but not kept.
const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// What a run thread needs from the service.
#[derive(Clone)]
pub struct RunnerContext {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub tests_root: TestsRoot,
    /// The service's own base URL, given to tests as `EXECUTOR_URL`.
    pub public_url: String,
    /// Set when the service shuts down: runs get `shutdown_grace` more.
    pub shutdown_at: Arc<std::sync::Mutex<Option<Instant>>>,
}

/// Runs a claimed run to its end on the calling thread and writes its
/// outcome. `channel` is how the scheduler reaches it (see
/// [`supervision::channel`]); `claimed_at` is when its lease was taken.
pub fn execute(
    ctx: &RunnerContext,
    claim: Claim,
    channel: (RunControl, SyncSender<Event>, Receiver<Event>),
    claimed_at: Instant,
) {
    let run_id = claim.run.id;
    let span = tracing::info_span!("run", run_id, environment_id = claim.run.environment_id);
    let _entered = span.enter();
    tracing::info!(fence = claim.fence, "run started");
    let started = Instant::now();
    let outcome = match prepare(ctx, &claim) {
        Ok(paths) => run_pytest(ctx, &claim, paths, channel, claimed_at),
        Err(reason) => Some(early_error(reason)),
    };
    if let Some(outcome) = outcome {
        tracing::info!(status = %outcome.status, reason = ?outcome.reason, "run finished");
        if write_outcome(ctx, &claim, &outcome) {
            metrics::global().run_finished(outcome.status, started.elapsed());
        }
    }
}

fn early_error(reason: String) -> Outcome {
    Outcome {
        status: RunStatus::Error,
        log_tail: format!("{reason}\n"),
        reason: Some(reason),
        exit_code: None,
        summary: RunSummary::default(),
        cases: Vec::new(),
        log_offset: 0,
        junit_xml: None,
    }
}

/// The pytest arguments, after checking that every path still exists.
fn prepare(ctx: &RunnerContext, claim: &Claim) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    for raw in claim.run.paths() {
        let path = TestPath::parse(&raw).map_err(|why| format!("test path {raw:?} {why}"))?;
        ctx.tests_root.entry(&path).map_err(|why| {
            format!("cannot run: {why} (was it deleted after the run was queued?)")
        })?;
        args.push(path.as_arg());
    }
    Ok(args)
}

fn junit_path(ctx: &RunnerContext, run_id: i64) -> std::path::PathBuf {
    let safe_instance: String = ctx
        .config
        .instance_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::env::temp_dir().join(format!("test-executor-{safe_instance}-run-{run_id}.xml"))
}

/// Runs pytest to its end (or stop) and says how the run ended; `None`
/// when the lease was lost and the run is no longer ours to finish.
fn run_pytest(
    ctx: &RunnerContext,
    claim: &Claim,
    paths: Vec<String>,
    channel: (RunControl, SyncSender<Event>, Receiver<Event>),
    claimed_at: Instant,
) -> Option<Outcome> {
    let config = &ctx.config;
    let junit = junit_path(ctx, claim.run.id);
    let _ = std::fs::remove_file(&junit);
    let timeout = claim
        .environment
        .run_timeout_secs
        .and_then(|secs| u64::try_from(secs).ok())
        .map_or(config.run_timeout, Duration::from_secs);
    let (args, env) = pytest_command(ctx, claim, &junit, paths);
    let command = process::TestCommand {
        program: &config.python,
        args,
        cwd: ctx.tests_root.path(),
        env,
        // The service's own secrets are not the tests' business.
        remove_env: &["DATABASE_URL", "PYTEST_ADDOPTS"],
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(e) => return Some(early_error(format!("cannot create a pipe: {e}"))),
    };
    let lease = config.lease();
    let watchdog = lease.saturating_sub(supervision::margin(lease));
    let child = match process::spawn(&command, writer, watchdog) {
        Ok(child) => child,
        Err(e) => {
            return Some(early_error(format!(
                "cannot start {} -m pytest: {e}",
                config.python
            )))
        }
    };
    // The writer ends were moved into the command, which is dropped now,
    // so the pipe reports end of file once the test tree closes it.
    drop(command);
    let pgid = child.id() as i32;
    if let Ok(mut conn) = ctx.pool.get() {
        let (boot_id, start_ticks) = process::group_identity(pgid);
        let (environment_id, fence) = (claim.run.environment_id, claim.fence);
        let _ = leases::record_pgid(
            &mut conn,
            environment_id,
            fence,
            pgid,
            boot_id.as_deref(),
            start_ticks,
        );
    }
    let supervision =
        match Supervision::new(ctx, claim, channel, child, reader, claimed_at, timeout) {
            Ok(supervision) => supervision,
            Err(e) => {
                process::kill_group_and_wait(pgid, Duration::from_secs(5));
                return Some(early_error(format!("cannot follow the test process: {e}")));
            }
        };
    let ended = supervision.run();

    let exit_code = ended.exit.and_then(|status| status.code());
    let junit_xml = read_report(&junit);
    let cases = junit_xml
        .as_deref()
        .map(|xml| junit::parse(xml).unwrap_or_default())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&junit);
    let junit_xml = junit_xml.filter(|xml| {
        let keep = xml.len() as u64 <= MAX_REPORT_BYTES;
        if !keep {
            tracing::warn!(bytes = xml.len(), "the JUnit report is too large to keep");
        }
        keep
    });
    let progress = ended.progress;
    let summary = progress
        .final_counts
        .clone()
        .or_else(|| (!cases.is_empty()).then(|| summary_of(&cases)))
        .unwrap_or(progress.live.clone());
    let (status, reason) = match ended.stop {
        Some(StopReason::Cancelled) => (RunStatus::Cancelled, Some("cancelled by user".into())),
        Some(StopReason::TimedOut) => (
            RunStatus::Error,
            Some(format!("timed out after {} s", timeout.as_secs())),
        ),
        Some(StopReason::ShutDown) => (RunStatus::Error, Some("executor shut down".into())),
        Some(StopReason::LeaseLost) => (RunStatus::Error, Some("executor lost".into())),
        None => status_of_exit(exit_code),
    };
    let (log_offset, log_tail) = ended.log.finish();
    Some(Outcome {
        status,
        reason,
        exit_code,
        summary,
        cases,
        log_tail,
        log_offset,
        junit_xml,
    })
}

/// pytest's arguments and the test process's environment: the
/// environment's variables first, so that the runner's own win.
fn pytest_command(
    ctx: &RunnerContext,
    claim: &Claim,
    junit: &std::path::Path,
    paths: Vec<String>,
) -> (Vec<std::ffi::OsString>, Vec<(String, String)>) {
    let mut args: Vec<std::ffi::OsString> = [
        "-m",
        "pytest",
        "-v",
        "-rA",
        "--color=yes",
        "-p",
        "no:cacheprovider",
        "-o",
        "junit_family=xunit1",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(format!("--rootdir={}", ctx.tests_root.path().display()).into());
    args.push(format!("--junitxml={}", junit.display()).into());
    // Paths that look like options stay paths.
    args.push("--".into());
    args.extend(paths.into_iter().map(Into::into));

    let mut env: Vec<(String, String)> = claim.environment.variables().into_iter().collect();
    env.extend([
        ("PYTHONUNBUFFERED".into(), "1".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("TEST_ENV_ID".into(), claim.run.environment_id.to_string()),
        ("TEST_ENV_NAME".into(), claim.environment.name.clone()),
        ("EXECUTOR_URL".into(), ctx.public_url.clone()),
        ("TEST_RUN_ID".into(), claim.run.id.to_string()),
    ]);
    (args, env)
}

/// The report pytest wrote, if it wrote one; read up to twice the size
/// kept (larger ones still give their cases), so that a runaway report
/// cannot take the memory.
fn read_report(path: &std::path::Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut xml = String::new();
    file.take(MAX_REPORT_BYTES * 2)
        .read_to_string(&mut xml)
        .ok()?;
    Some(xml)
}

/// pytest's exit codes: 0 all passed, 1 some failed, 2 interrupted or
/// collection errors, 3 internal error, 4 usage error, 5 no tests.
pub fn status_of_exit(code: Option<i32>) -> (RunStatus, Option<String>) {
    match code {
        Some(0) => (RunStatus::Success, None),
        Some(1) => (RunStatus::Failed, Some("some tests failed".into())),
        Some(2) => (
            RunStatus::Error,
            Some("test execution was interrupted or collection failed (pytest exit 2)".into()),
        ),
        Some(3) => (
            RunStatus::Error,
            Some("pytest internal error (exit 3)".into()),
        ),
        Some(4) => (RunStatus::Error, Some("pytest usage error (exit 4)".into())),
        Some(5) => (
            RunStatus::Error,
            Some("no tests were collected (exit 5)".into()),
        ),
        Some(127) => (
            RunStatus::Error,
            Some("the Python interpreter could not be started".into()),
        ),
        Some(code) if code > 128 => (
            RunStatus::Error,
            Some(format!(
                "the test process was killed by signal {}",
                code - 128
            )),
        ),
        Some(code) => (
            RunStatus::Error,
            Some(format!("pytest exited with code {code}")),
        ),
        None => (RunStatus::Error, Some("the test process was killed".into())),
    }
}

fn summary_of(cases: &[shared::CaseResult]) -> RunSummary {
    use shared::CaseOutcome;
    let count =
        |outcome: CaseOutcome| Some(cases.iter().filter(|c| c.outcome == outcome).count() as i32);
    RunSummary {
        total: Some(cases.len() as i32),
        passed: count(CaseOutcome::Passed),
        failed: count(CaseOutcome::Failed),
        skipped: count(CaseOutcome::Skipped),
        errors: count(CaseOutcome::Error),
        xfailed: None,
        xpassed: None,
    }
}

/// Writes the outcome, retrying while the database is away, for as long as
/// the lease could still be ours; after that a sweeper finishes the run.
/// True if this writer finished the run.
fn write_outcome(ctx: &RunnerContext, claim: &Claim, outcome: &Outcome) -> bool {
    let give_up = Instant::now() + ctx.config.lease();
    loop {
        let written = ctx
            .pool
            .get()
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                leases::finish(
                    &mut conn,
                    claim.run.id,
                    claim.run.environment_id,
                    claim.fence,
                    outcome,
                )
                .map_err(|e| e.to_string())
            });
        match written {
            Ok(true) => return true,
            Ok(false) => {
                tracing::warn!("outcome not written: the run was finished by someone else");
                return false;
            }
            Err(e) if Instant::now() < give_up => {
                tracing::warn!(error = %e, "cannot write the outcome yet; retrying");
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => {
                tracing::error!(error = %e, "giving up writing the outcome; the lease will expire");
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_to_statuses() {
        assert_eq!(status_of_exit(Some(0)).0, RunStatus::Success);
        assert_eq!(status_of_exit(Some(1)).0, RunStatus::Failed);
        for code in [2, 3, 4, 5, 137] {
            assert_eq!(
                status_of_exit(Some(code)).0,
                RunStatus::Error,
                "exit {code}"
            );
        }
        assert!(status_of_exit(Some(5))
            .1
            .unwrap_or_default()
            .contains("no tests"));
    }
}
