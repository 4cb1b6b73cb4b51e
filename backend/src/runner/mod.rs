//! Runs one claimed test run on its own thread: starts pytest, streams its
//! output into the log, keeps the lease alive, obeys cancel and time-out,
//! and writes the outcome, all under the run's fence.

pub mod junit;
pub mod log;
pub mod output;
pub mod process;

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::validate::TestPath;
use shared::{RunStatus, RunSummary};

use crate::catalog::TestsRoot;
use crate::config::Config;
use crate::db::leases::{self, Claim, Outcome};
use crate::db::logs::MAX_CHUNK_BYTES;
use crate::db::PgPool;
use log::LogBuffer;
use output::{LineSplitter, Progress};

/// How far behind the test's output the stored log may lag.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// How often a cancel asked on another instance is looked for.
const CANCEL_CHECK_EVERY: Duration = Duration::from_millis(500);
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

/// Why a run is being stopped before pytest ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Cancelled,
    TimedOut,
    ShutDown,
    LeaseLost,
}

/// The signals a stop sends, each after the previous one had its grace.
struct Stopping {
    reason: StopReason,
    stage: usize,
    since: Instant,
}

const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGKILL];

pub fn execute(ctx: &RunnerContext, claim: Claim, cancel: Arc<AtomicBool>) {
    let run_id = claim.run.id;
    let span = tracing::info_span!("run", run_id, environment_id = claim.run.environment_id);
    let _entered = span.enter();
    tracing::info!(fence = claim.fence, "run started");
    let started = Instant::now();
    let outcome = match prepare(ctx, &claim) {
        Ok(args) => supervise_pytest(ctx, &claim, args, &cancel),
        Err(reason) => Some(early_error(reason)),
    };
    if let Some(outcome) = outcome {
        tracing::info!(status = %outcome.status, reason = ?outcome.reason, "run finished");
        if write_outcome(ctx, &claim, &outcome) {
            crate::metrics::global().run_finished(outcome.status, started.elapsed());
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
fn supervise_pytest(
    ctx: &RunnerContext,
    claim: &Claim,
    paths: Vec<String>,
    cancel: &AtomicBool,
) -> Option<Outcome> {
    let config = &ctx.config;
    let run_id = claim.run.id;
    let environment_id = claim.run.environment_id;
    let junit = junit_path(ctx, run_id);
    let _ = std::fs::remove_file(&junit);
    let timeout = claim
        .environment
        .run_timeout_secs
        .and_then(|secs| u64::try_from(secs).ok())
        .map_or(config.run_timeout, Duration::from_secs);

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
        ("TEST_ENV_ID".into(), environment_id.to_string()),
        ("TEST_ENV_NAME".into(), claim.environment.name.clone()),
        ("EXECUTOR_URL".into(), ctx.public_url.clone()),
        ("TEST_RUN_ID".into(), run_id.to_string()),
    ]);
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
    // Kill before the lease can expire: leave time for the kill itself.
    let lease_margin = (lease / 4).max(Duration::from_millis(500));
    let mut child = match process::spawn(&command, writer, lease.saturating_sub(lease_margin)) {
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
        let _ = leases::record_pgid(&mut conn, environment_id, claim.fence, pgid);
    }

    let (lines_tx, lines_rx) = mpsc::sync_channel::<Vec<u8>>(64);
    let pump = std::thread::Builder::new()
        .name(format!("run-{run_id}-output"))
        .spawn(move || pump_output(reader, lines_tx));
    if let Err(e) = pump {
        process::kill_group_and_wait(pgid, Duration::from_secs(5));
        let _ = child.wait();
        return Some(early_error(format!("cannot start the output reader: {e}")));
    }

    let started = Instant::now();
    let renew_every = lease / 3;
    let mut last_renewal = started;
    let mut next_renewal = started + renew_every;
    let mut next_flush = started + FLUSH_EVERY;
    let mut next_cancel_check = started + CANCEL_CHECK_EVERY;
    let mut log = LogBuffer::new(config.log_max_bytes);
    let mut progress = Progress::default();
    let mut flushed_progress = RunSummary::default();
    let mut stopping: Option<Stopping> = None;
    let mut exit_status = None;
    let mut output_done = false;
    let mut leftovers_killed = false;

    loop {
        match lines_rx.recv_timeout(Duration::from_millis(20)) {
            Ok(bytes) => {
                take_line(&bytes, &mut log, &mut progress);
                // Drain what is already there before the checks below.
                while let Ok(bytes) = lines_rx.try_recv() {
                    take_line(&bytes, &mut log, &mut progress);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => output_done = true,
        }
        if exit_status.is_none() {
            exit_status = child.try_wait().ok().flatten();
            if output_done && exit_status.is_none() {
                // The exit follows the end of output within moments: look
                // again soon, to hand the environment on, without spinning.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if exit_status.is_some() {
            if output_done {
                break;
            }
            // pytest is gone but something it started still holds the
            // output open: the run is over, so are they.
            if !leftovers_killed {
                process::signal_group(pgid, libc::SIGKILL);
                leftovers_killed = true;
            }
        }

        let now = Instant::now();
        if now >= next_flush {
            next_flush = now + FLUSH_EVERY;
            match flush(ctx, claim, &mut log, &progress.live, &mut flushed_progress) {
                FlushResult::Lost => stop(&mut stopping, StopReason::LeaseLost),
                FlushResult::Written | FlushResult::Failed => {}
            }
        }
        if now >= next_cancel_check {
            next_cancel_check = now + CANCEL_CHECK_EVERY;
            if cancel.load(Ordering::SeqCst) || cancel_requested_in_db(ctx, run_id) {
                stop(&mut stopping, StopReason::Cancelled);
            }
        }
        if now >= next_renewal {
            next_renewal = now + renew_every;
            let attempt = Instant::now();
            match ctx
                .pool
                .get()
                .map_err(|e| e.to_string())
                .and_then(|mut conn| {
                    leases::renew(&mut conn, environment_id, claim.fence, config.lease_secs)
                        .map_err(|e| e.to_string())
                }) {
                Ok(true) => {
                    last_renewal = attempt;
                    process::heartbeat(&mut child);
                }
                Ok(false) => {
                    tracing::warn!("lease lost: another instance reclaimed the environment");
                    stop(&mut stopping, StopReason::LeaseLost);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease renewal failed; will retry");
                    next_renewal = now + Duration::from_millis(250).min(renew_every);
                }
            }
        }
        if now.duration_since(last_renewal) + lease_margin >= lease {
            tracing::warn!("lease could not be renewed in time; stopping the run");
            stop(&mut stopping, StopReason::LeaseLost);
        }
        if now.duration_since(started) >= timeout {
            stop(&mut stopping, StopReason::TimedOut);
        }
        let shutdown_at = ctx.shutdown_at.lock().ok().and_then(|at| *at);
        if shutdown_at.is_some_and(|at| now >= at + config.shutdown_grace) {
            stop(&mut stopping, StopReason::ShutDown);
        }
        if let Some(stop) = stopping.as_mut() {
            escalate(stop, pgid, config.kill_grace, exit_status.is_some());
        }
    }
    // Nothing of the tree may outlive the run.
    if process::group_alive(pgid) {
        process::kill_group_and_wait(pgid, Duration::from_secs(10));
    }

    let stop_reason = stopping.map(|s| s.reason);
    let exit_code = exit_status.and_then(|status| status.code());
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
    let summary = progress
        .final_counts
        .clone()
        .or_else(|| (!cases.is_empty()).then(|| summary_of(&cases)))
        .unwrap_or(progress.live.clone());
    let (status, reason) = match stop_reason {
        Some(StopReason::Cancelled) => (RunStatus::Cancelled, Some("cancelled by user".into())),
        Some(StopReason::TimedOut) => (
            RunStatus::Error,
            Some(format!("timed out after {} s", timeout.as_secs())),
        ),
        Some(StopReason::ShutDown) => (RunStatus::Error, Some("executor shut down".into())),
        Some(StopReason::LeaseLost) => (RunStatus::Error, Some("executor lost".into())),
        None => status_of_exit(exit_code),
    };
    let (log_offset, log_tail) = log.finish();
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

fn take_line(bytes: &[u8], log: &mut LogBuffer, progress: &mut Progress) {
    let text = output::to_log_text(bytes);
    progress.observe(&text);
    log.push(text);
}

fn pump_output(mut reader: std::io::PipeReader, lines: mpsc::SyncSender<Vec<u8>>) {
    let mut splitter = LineSplitter::default();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                let mut closed = false;
                splitter.push(&buffer[..n], |line| {
                    closed |= lines.send(line).is_err();
                });
                if closed {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if let Some(rest) = splitter.finish() {
        let _ = lines.send(rest);
    }
}

fn stop(stopping: &mut Option<Stopping>, reason: StopReason) {
    match stopping {
        // A lost lease overrides a gentler stop already under way.
        Some(current) if reason == StopReason::LeaseLost && current.reason != reason => {
            current.reason = reason;
        }
        Some(_) => {}
        None => {
            *stopping = Some(Stopping {
                reason,
                stage: 0,
                since: Instant::now(),
            })
        }
    }
}

/// Sends the next signal once the previous one had its grace period; a
/// lost lease goes straight to SIGKILL, there is no time to be gentle.
fn escalate(stop: &mut Stopping, pgid: i32, grace: Duration, exited: bool) {
    if stop.reason == StopReason::LeaseLost && stop.stage < STOP_SIGNALS.len() {
        process::signal_group(pgid, libc::SIGKILL);
        stop.stage = STOP_SIGNALS.len();
        return;
    }
    if stop.stage == 0 || (stop.since.elapsed() >= grace && stop.stage < STOP_SIGNALS.len()) {
        if !exited || process::group_alive(pgid) {
            process::signal_group(pgid, STOP_SIGNALS[stop.stage]);
        }
        stop.stage += 1;
        stop.since = Instant::now();
    }
}

enum FlushResult {
    Written,
    Failed,
    Lost,
}

/// Writes pending log and progress, if any; kept for later if the database
/// is away.
fn flush(
    ctx: &RunnerContext,
    claim: &Claim,
    log: &mut LogBuffer,
    progress: &RunSummary,
    flushed_progress: &mut RunSummary,
) -> FlushResult {
    if !log.has_pending() && progress == flushed_progress {
        return FlushResult::Written;
    }
    let Ok(mut conn) = ctx.pool.get() else {
        return FlushResult::Failed;
    };
    loop {
        let (offset, pending) = log.pending();
        let piece = log::pieces(pending, MAX_CHUNK_BYTES as usize)
            .first()
            .copied()
            .unwrap_or("");
        let len = piece.len();
        match leases::append_log(
            &mut conn,
            claim.run.id,
            claim.fence,
            offset,
            piece,
            progress,
        ) {
            Ok(true) => {
                log.mark_stored(len);
                *flushed_progress = progress.clone();
                if !log.has_pending() {
                    return FlushResult::Written;
                }
            }
            Ok(false) => return FlushResult::Lost,
            Err(e) => {
                tracing::warn!(error = %e, "log write failed; output is kept until the database is back");
                return FlushResult::Failed;
            }
        }
    }
}

fn cancel_requested_in_db(ctx: &RunnerContext, run_id: i64) -> bool {
    ctx.pool
        .get()
        .ok()
        .and_then(|mut conn| leases::cancel_requested(&mut conn, run_id).ok())
        .unwrap_or(false)
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
