//! Runs one claimed test run on its own thread: starts pytest with the
//! reporter plugin, follows it (see [`supervision`]), and writes the
//! outcome, all under the run's fence.

pub mod artifacts;
pub mod log;
pub mod output;
pub mod plugin;
pub mod report;
pub mod reporter_socket;
pub mod setup;
pub mod supervision;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::validate::TestPath;
use shared::{CaseResult, RunStatus, RunSummary};

use crate::catalog::TestsRoot;
use crate::config::Config;
use crate::db::leases::{self, Claim, Outcome, Stored, Written};
use crate::db::PgPool;
use crate::junit;
use crate::sys::process;
use crate::sys::supervisor::Program;
use crate::telemetry::metrics;
use plugin::RuntimeDir;
use setup::{RunFiles, RunSetup};
use supervision::{Ended, StopReason, Supervision, TestProcess};

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
    /// The reporter plugin and the runs' sockets.
    pub runtime: Arc<RuntimeDir>,
}

/// A run claimed by the finish of the one before it on the same
/// environment, when its claim began, the run before it, whose last
/// chores wait, and the setup made ahead for the run thought next (see
/// [`RunSetup::for_next_on`]), which `execute` uses if it is this one's.
pub struct HandedOff {
    pub claim: Claim,
    pub claimed_at: Instant,
    pub previous: FinishedRun,
    pub setup: Option<RunSetup>,
}

/// What is left to do for a finished run whose finish handed the
/// environment on to the next run, held by that next run: record it in
/// insights and environment health (it was listed for that, see
/// [`leases::finish_and_claim_next`]), and remove its artifacts directory
/// (slow on some file systems: a third of a millisecond for an empty one
/// on ext4). Done once the next run's test process is past its start (the
/// first thing heard from it), and in any case before its own finish (or
/// when this is dropped): a run is in insights before the one after it
/// finishes. If the database is away, a later sweep records it.
pub struct FinishedRun {
    pool: PgPool,
    run_id: i64,
    artifacts: Option<artifacts::ArtifactsDir>,
}

impl FinishedRun {
    /// Does what is left now: dropping it does.
    pub fn wrap_up(self) {
        drop(self);
    }
}

impl Drop for FinishedRun {
    fn drop(&mut self) {
        drop(self.artifacts.take());
        let run_id = self.run_id;
        let recorded = self
            .pool
            .get()
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                leases::record_listed_run(&mut conn, run_id).map_err(|e| e.to_string())
            });
        if let Err(e) = recorded {
            tracing::warn!(run_id, error = %e, "a finished run is not in insights yet; a sweep will record it");
        }
    }
}

/// Runs a claimed run to its end on the calling thread and writes its
/// outcome. `channel` is how the scheduler reaches it (see
/// [`supervision::channel`]); `claimed_at` is when its lease was taken;
/// `previous`, the run whose finish claimed this one, to be wrapped up;
/// `ready`, a setup made ahead, used if it is this run's. With
/// `hand_off`, the finish also claims what comes next on the environment,
/// for the caller to run.
pub fn execute(
    ctx: &RunnerContext,
    claim: Claim,
    channel: supervision::Channel,
    claimed_at: Instant,
    previous: Option<FinishedRun>,
    ready: Option<RunSetup>,
    hand_off: Option<leases::Claimer<'_>>,
) -> Option<HandedOff> {
    let run_id = claim.run.id;
    let span = tracing::info_span!("run", run_id, environment_id = claim.environment.id);
    let _entered = span.enter();
    tracing::info!(fence = claim.fence, "run started");
    let started = Instant::now();
    let mut token = TokenGuard::new(ctx, &claim);
    let setup = match ready.filter(|setup| setup.run_id == run_id) {
        Some(setup) => setup.claimed(ctx),
        None => RunSetup::create(ctx, run_id, &claim.run.paths()),
    };
    let (mut outcome, stored, artifacts_dir, next_setup) = match setup {
        Ok(setup) => {
            let started = (channel, claimed_at, previous);
            match run_pytest(ctx, &claim, setup, started, hand_off.is_some()) {
                Some(Ran {
                    mut outcome,
                    stored,
                    artifacts,
                    next_setup,
                }) => {
                    // The process tree is gone: what it left is complete.
                    for line in artifacts::keep(
                        &ctx.pool,
                        run_id,
                        claim.fence,
                        artifacts.path(),
                        ctx.config.artifacts_max_bytes,
                    ) {
                        outcome.log_tail.push_str(&line);
                        outcome.log_tail.push('\n');
                    }
                    (outcome, stored, Some(artifacts), next_setup)
                }
                None => {
                    tracing::warn!("the lease was lost before the tests started; nothing ran");
                    return None;
                }
            }
        }
        Err(reason) => {
            if let Some(previous) = previous {
                previous.wrap_up();
            }
            (early_error(reason), Stored::default(), None, None)
        }
    };
    relative_attachments(&mut outcome.cases);
    tracing::info!(status = %outcome.status, reason = ?outcome.reason, "run finished");
    let status = outcome.status;
    let (written, next) = write_outcome(ctx, &claim, outcome, stored, hand_off);
    if written {
        token.revoked();
        metrics::global().run_finished(status, started.elapsed());
    }
    // The directory is removed once the next run has started, if there
    // is one; else now.
    next.map(|(claim, claimed_at)| HandedOff {
        claim,
        claimed_at,
        previous: FinishedRun {
            pool: ctx.pool.clone(),
            run_id,
            artifacts: artifacts_dir,
        },
        setup: next_setup,
    })
}

/// Attachment paths as the artifacts list names them: one given whole
/// (inside `TEST_ARTIFACTS_DIR`, as a JUnit report may hold it) keeps
/// only its part below the run's artifacts directory.
fn relative_attachments(cases: &mut [CaseResult]) {
    for case in cases {
        for path in &mut case.attachments {
            if let Some((_, below)) = path
                .split_once("/artifacts-")
                .filter(|_| path.starts_with('/'))
            {
                if let Some((_, relative)) = below.split_once('/') {
                    *path = relative.to_string();
                }
            }
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
        junit_xml: None,
    }
}

/// Revokes the run's API token (`EXECUTOR_TOKEN`, issued with its
/// claim) when dropped, unless the finish revoked it: whatever way the run
/// ends, its tests' token does not outlive it.
struct TokenGuard {
    pool: PgPool,
    id: Option<i64>,
}

impl TokenGuard {
    fn new(ctx: &RunnerContext, claim: &Claim) -> TokenGuard {
        TokenGuard {
            pool: ctx.pool.clone(),
            id: claim.token.as_ref().map(|token| token.id),
        }
    }

    /// The finish that revoked it was written.
    fn revoked(&mut self) {
        self.id = None;
    }
}

impl Drop for TokenGuard {
    fn drop(&mut self) {
        let Some(id) = self.id else {
            return;
        };
        if let Ok(mut conn) = self.pool.get() {
            let _ = crate::db::identity::delete_token(&mut conn, id);
        }
    }
}

/// A run's tests, over: how the run ended, what of it is already stored,
/// its artifacts directory, and the setup made ahead for the run thought
/// next on its environment.
struct Ran {
    outcome: Outcome,
    stored: Stored,
    artifacts: artifacts::ArtifactsDir,
    next_setup: Option<RunSetup>,
}

/// Runs pytest to its end (or stop) and says how the run ended; `None`
/// if the lease was lost before pytest started (the run is someone
/// else's to finish). With `hand_off`, the run thought next is set up
/// ahead of the finish.
fn run_pytest(
    ctx: &RunnerContext,
    claim: &Claim,
    setup: RunSetup,
    (channel, claimed_at, previous): (supervision::Channel, Instant, Option<FinishedRun>),
    hand_off: bool,
) -> Option<Ran> {
    let config = &ctx.config;
    let timeout = claim
        .environment
        .run_timeout_secs
        .and_then(|secs| u64::try_from(secs).ok())
        .map_or(config.run_timeout, Duration::from_secs);
    let RunSetup {
        paths,
        files,
        reporter,
        artifacts,
        ..
    } = setup;
    let not_started = |artifacts, reason| {
        Some(Ran {
            outcome: early_error(reason),
            stored: Stored::default(),
            artifacts,
            next_setup: None,
        })
    };
    let (args, mut env) = pytest_command(
        ctx,
        claim,
        &files,
        reporter.path(),
        &paths,
        artifacts.path(),
    );
    // Tests that call this service's own API do so as the run's user.
    if let Some(token) = &claim.token {
        env.push(("EXECUTOR_TOKEN".into(), token.secret.clone()));
    }
    let command = process::TestCommand {
        program: &config.python,
        args,
        cwd: ctx.tests_root.path(),
        env,
    };
    // The lease is ours since the claim; make sure it still is before
    // anything starts, if the claim (timed from before its transaction)
    // was slow enough for the lease to be near its end. A fresh lease can
    // only be taken back once expired: asking then would only add a
    // round trip to every start.
    let lease = config.lease();
    if claimed_at.elapsed() >= supervision::margin(lease) && !lease_still_ours(ctx, claim) {
        return None;
    }
    let process::Started {
        child,
        output,
        warm_marker,
    } = match process::spawn(&command, &supervisor_settings(ctx)) {
        Ok(started) => started,
        Err(e) => {
            let why = format!("cannot start {} -m pytest: {e}", config.python);
            return not_started(artifacts, why);
        }
    };
    let pgid = child.id() as i32;
    let process = TestProcess {
        child,
        output,
        reporter,
        warm_marker,
    };
    let supervision = match Supervision::new(ctx, claim, channel, process, claimed_at, timeout) {
        Ok(supervision) => supervision.wrapping_up(previous).setting_up_next(hand_off),
        Err(e) => {
            process::kill_group_and_wait(pgid, Duration::from_secs(5));
            let why = format!("cannot follow the test process: {e}");
            return not_started(artifacts, why);
        }
    };
    let mut ended = supervision.run();
    let stored = ended.stored;
    let next_setup = ended.next_setup.take();
    Some(Ran {
        outcome: outcome_of(ended, &files.junit, timeout),
        stored,
        artifacts,
        next_setup,
    })
}

/// What every test process's supervisor starts with: the watchdog a
/// little inside the lease, none of the service's own secrets, and (with
/// `WARM_START`) the interpreter to start ahead of the run, with the
/// variables [`pytest_command`] gives every run.
pub fn supervisor_settings(ctx: &RunnerContext) -> process::SupervisorSettings {
    let config = &ctx.config;
    let lease = config.lease();
    process::SupervisorSettings {
        watchdog: lease.saturating_sub(supervision::margin(lease)),
        remove_env: [
            "DATABASE_URL",
            "PYTEST_ADDOPTS",
            "ADMIN_TOKEN",
            "ADMIN_PASSWORD",
        ]
        .map(String::from)
        .to_vec(),
        warm: config.warm_start.then(|| Program {
            program: config.python.clone().into(),
            args: Vec::new(),
            cwd: Some(ctx.tests_root.path().as_os_str().to_owned()),
            env: interpreter_env(ctx, None)
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
            ..Program::default()
        }),
    }
}

/// Renews the lease once: false only when it is certainly gone (a
/// database that does not answer leaves the decision to the supervision's
/// own renewals).
fn lease_still_ours(ctx: &RunnerContext, claim: &Claim) -> bool {
    let renewed = ctx
        .pool
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| {
            leases::renew(
                &mut conn,
                claim.environment.id,
                claim.fence,
                ctx.config.lease_secs,
            )
            .map_err(|e| e.to_string())
        });
    !matches!(renewed, Ok(false))
}

/// How the run ended: pytest's own report when its plugin spoke, else its
/// JUnit file and closing line; the stop reason, if it was stopped.
fn outcome_of(ended: Ended, junit_file: &Path, timeout: Duration) -> Outcome {
    let Ended {
        exit,
        stop,
        log,
        progress,
        mut results,
        unstored_cases,
        ..
    } = ended;
    let exit_code = exit.and_then(|status| status.code());
    // The supervisor answers the program's signal as 128 + its number: a
    // signal of its own means the supervisor itself was killed.
    let supervisor_killed = exit.and_then(|status| status.signal()).map(|signal| {
        format!(
            "the tests' supervisor was killed by {}",
            signal_name(signal)
        )
    });
    let junit_xml = read_report(junit_file).filter(|xml| {
        let keep = xml.len() as u64 <= MAX_REPORT_BYTES;
        if !keep {
            tracing::warn!(bytes = xml.len(), "the JUnit report is too large to keep");
        }
        keep
    });
    let stopped = stop.map(|reason| match reason {
        StopReason::Cancelled => (RunStatus::Cancelled, "cancelled by user".to_string()),
        StopReason::TimedOut => (
            RunStatus::Error,
            format!("timed out after {} s", timeout.as_secs()),
        ),
        StopReason::ShutDown => (RunStatus::Error, "executor shut down".to_string()),
        StopReason::LeaseLost => (RunStatus::Error, "executor lost".to_string()),
    });
    let mut cases = unstored_cases;
    let (status, reason, summary) = if results.connected {
        let mut verdict = stopped.map(|(status, why)| (status, Some(why)));
        if !results.ended() {
            // pytest did not get to its end: the test under way is an error
            // saying why, and so is the run.
            let why = match (&verdict, exit_code) {
                (Some((_, Some(why))), _) => why.clone(),
                (_, Some(code)) if code > 128 => {
                    format!("pytest was killed by {}", signal_name(code - 128))
                }
                (_, Some(code)) => {
                    format!("pytest exited with code {code} before its session ended")
                }
                (_, None) => supervisor_killed.unwrap_or_else(|| "pytest was killed".to_string()),
            };
            let running = results.interrupt(&why);
            if verdict.is_none() {
                let reason = match &running {
                    Some(test) => format!("{why}, while running {test}"),
                    None => why,
                };
                verdict = Some((RunStatus::Error, Some(reason)));
            }
        }
        cases.extend(results.take_finished());
        let (status, reason) =
            verdict.unwrap_or_else(|| status_of_exit(results.exit_status.or(exit_code)));
        (status, reason, results.summary())
    } else {
        // No plugin: the JUnit file and the closing line, as pytest left them.
        cases.extend(
            junit_xml
                .as_deref()
                .map(|xml| junit::parse(xml).unwrap_or_default())
                .unwrap_or_default(),
        );
        let summary = progress
            .final_counts
            .clone()
            .or_else(|| (!cases.is_empty()).then(|| summary_of(&cases)))
            .unwrap_or_default();
        let (status, reason) = match (stopped, supervisor_killed) {
            (Some((status, why)), _) => (status, Some(why)),
            (None, Some(why)) => (RunStatus::Error, Some(why)),
            (None, None) => status_of_exit(exit_code),
        };
        (status, reason, summary)
    };
    let (_, log_tail) = log.finish();
    Outcome {
        status,
        reason,
        exit_code,
        summary,
        cases,
        log_tail,
        junit_xml,
    }
}

/// A signal's number with its usual name, as people know them.
fn signal_name(number: i32) -> String {
    match nix::sys::signal::Signal::try_from(number) {
        Ok(signal) => format!("signal {number} ({})", signal.as_str()),
        Err(_) => format!("signal {number}"),
    }
}

/// Names the run's reporter socket to its plugin. Unique to the run, and
/// inherited by whatever the tests start: it also marks what they leave
/// behind (see [`supervision::leftovers_marker`]).
const EVENTS_VAR: &str = "TEST_EXECUTOR_EVENTS";

/// Loads the reporter plugin; prints of the tests reach the log as they
/// happen, and are still captured for failure reports.
const PLUGIN_ARGS: [&str; 4] = ["-p", plugin::MODULE, "--capture", "tee-sys"];

/// pytest's arguments and the test process's environment: the
/// environment's variables first, so that the runner's own win.
fn pytest_command(
    ctx: &RunnerContext,
    claim: &Claim,
    files: &RunFiles,
    events: &Path,
    paths: &[TestPath],
    artifacts_dir: &Path,
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
    .chain(PLUGIN_ARGS.iter())
    .map(Into::into)
    .collect();
    args.push(format!("--rootdir={}", ctx.tests_root.path().display()).into());
    args.push(format!("--junitxml={}", files.junit.display()).into());
    // Each expression is one argument of its own (no shell ever sees it);
    // checked when the run was created, it never starts with '-'.
    let selection = claim.run.selection();
    if let Some(keyword) = selection.keyword {
        args.extend(["-k".into(), keyword.into()]);
    }
    if let Some(markers) = selection.markers {
        args.extend(["-m".into(), markers.into()]);
    }
    // Paths that look like options stay paths.
    args.push("--".into());
    if files.selection.is_some() {
        // The plugin narrows these files down to the node ids named.
        let mut seen = std::collections::HashSet::new();
        args.extend(
            paths
                .iter()
                .filter(|p| seen.insert(p.location.clone()))
                .map(|p| p.location.clone().into()),
        );
    } else {
        args.extend(paths.iter().map(|p| p.as_arg().into()));
    }

    let variables = claim.environment.variables();
    let python_env = interpreter_env(ctx, variables.get("PYTHONPATH").map(String::as_str));
    let mut env: Vec<(String, String)> = variables.into_iter().collect();
    env.extend(python_env);
    env.extend([
        ("TEST_ENV_ID".into(), claim.environment.id.to_string()),
        ("TEST_ENV_NAME".into(), claim.environment.name.clone()),
        ("EXECUTOR_URL".into(), ctx.public_url.clone()),
        ("TEST_RUN_ID".into(), claim.run.id.to_string()),
        (EVENTS_VAR.into(), events.display().to_string()),
        (
            "TEST_ARTIFACTS_DIR".into(),
            artifacts_dir.display().to_string(),
        ),
    ]);
    if let Some(selection) = &files.selection {
        env.push((
            "TEST_EXECUTOR_SELECTION".into(),
            selection.display().to_string(),
        ));
    }
    (args, env)
}

/// What the interpreter of every run reads as it starts: unbuffered
/// output, no bytecode written into the tests root, and the reporter
/// plugin first on `PYTHONPATH` (before the environment's own entries).
fn interpreter_env(ctx: &RunnerContext, their_path: Option<&str>) -> [(String, String); 3] {
    let plugin_dir = ctx.runtime.plugin_dir().display().to_string();
    let python_path = match their_path.filter(|p| !p.is_empty()) {
        Some(theirs) => format!("{plugin_dir}:{theirs}"),
        None => plugin_dir,
    };
    [
        ("PYTHONUNBUFFERED".into(), "1".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("PYTHONPATH".into(), python_path),
    ]
}

/// The report pytest wrote, if it wrote one; read up to twice the size
/// kept (larger ones still give their cases), so that a runaway report
/// cannot take the memory.
fn read_report(path: &Path) -> Option<String> {
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
                "the test process was killed by {}",
                signal_name(code - 128)
            )),
        ),
        Some(code) => (
            RunStatus::Error,
            Some(format!("pytest exited with code {code}")),
        ),
        None => (RunStatus::Error, Some("the test process was killed".into())),
    }
}

fn summary_of(cases: &[CaseResult]) -> RunSummary {
    use shared::CaseOutcome;
    let count =
        |outcome: CaseOutcome| Some(cases.iter().filter(|c| c.outcome == outcome).count() as i32);
    RunSummary {
        total: Some(cases.len() as i32),
        passed: count(CaseOutcome::Passed),
        failed: count(CaseOutcome::Failed),
        skipped: count(CaseOutcome::Skipped),
        errors: count(CaseOutcome::Error),
        ..RunSummary::default()
    }
}

/// Writes the outcome, retrying while the database is away, for as long as
/// the lease could still be ours; after that a sweeper finishes the run.
/// True if this writer finished the run; with it, the next run on the
/// environment if `hand_off` claimed one in the same transaction, and
/// when that claim began.
fn write_outcome(
    ctx: &RunnerContext,
    claim: &Claim,
    mut outcome: Outcome,
    mut stored: Stored,
    mut hand_off: Option<leases::Claimer<'_>>,
) -> (bool, Option<(Claim, Instant)>) {
    let give_up = Instant::now() + ctx.config.lease();
    loop {
        let shutting_down = ctx.shutdown_at.lock().map_or(true, |at| at.is_some());
        let claimer = hand_off.filter(|_| !shutting_down);
        let claimed_at = Instant::now();
        let written = ctx
            .pool
            .get()
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                let lease_secs = ctx.config.lease_secs;
                leases::finish_and_claim_next(
                    &mut conn, claim, lease_secs, stored, &outcome, claimer,
                )
                .map_err(|e| e.to_string())
            });
        match written {
            Ok((Written::Done, next)) => {
                return (true, next.map(|next| (next, claimed_at)));
            }
            Ok((Written::Lost, _)) => {
                tracing::warn!("outcome not written: the run was finished by someone else");
                return (false, None);
            }
            Ok((Written::Behind(now), _)) => {
                // A log write committed though its answer was lost.
                let log_ahead = usize::try_from(now.log_bytes - stored.log_bytes).unwrap_or(0);
                let mut cut = log_ahead.min(outcome.log_tail.len());
                while !outcome.log_tail.is_char_boundary(cut) {
                    cut -= 1;
                }
                outcome.log_tail.drain(..cut);
                let cases_ahead = usize::try_from(now.cases - stored.cases).unwrap_or(0);
                outcome.cases.drain(..cases_ahead.min(outcome.cases.len()));
                stored = now;
            }
            Err(e) if Instant::now() < give_up => {
                tracing::warn!(error = %e, "cannot write the outcome yet; retrying");
                // Whatever failed, the finish must not fail again because
                // of a claim riding along: the scheduler claims instead.
                hand_off = None;
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => {
                tracing::error!(error = %e, "giving up writing the outcome; the lease will expire");
                return (false, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_attachment_paths_inside_the_artifacts_become_relative() {
        let mut cases = vec![CaseResult {
            nodeid: "a.py::t".into(),
            outcome: shared::CaseOutcome::Passed,
            duration_ms: 1,
            message: None,
            attachments: vec![
                "/tmp/test-executor-x/artifacts-12/shots/a.png".into(),
                "b.txt".into(),
                "/etc/passwd".into(),
            ],
        }];
        relative_attachments(&mut cases);
        assert_eq!(
            cases[0].attachments,
            ["shots/a.png", "b.txt", "/etc/passwd"]
        );
    }

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
        assert!(status_of_exit(Some(139))
            .1
            .unwrap_or_default()
            .contains("SIGSEGV"));
    }
}
