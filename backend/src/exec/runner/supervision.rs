//! One run's test process from start to end: its output into the log, its
//! lease kept alive, and every way it can be stopped (cancel, time-out,
//! lost lease, shutdown), each handled in one place.
//!
//! The loop sleeps until something happens: output or the end of it, an
//! event of pytest's reporter plugin, the test process exiting, a cancel or
//! a shutdown (which wake it through the same channel), or the next thing
//! that is due (a log flush, a lease renewal, the time-out, the next stop
//! step).
//!
//! Stopping always ends with the supervisor killing the whole tree (setsid
//! daemons included) before it exits; killing the process group is only
//! the fallback after that, and waiting for the end of output after the
//! process exited has a deadline.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use shared::{CaseResult, RunSummary};

use super::log::LogBuffer;
use super::output::{self, LineSplitter, Progress};
use super::report::{ReporterEvent, Results};
use super::reporter_socket::ReporterSocket;
use super::setup::RunSetup;
use super::{FinishedRun, RunnerContext};
use crate::db::leases::{self, Claim, Stored, Written};
use crate::db::logs::{self as stored_log, MAX_CHUNK_BYTES};
use crate::sys::process;

/// How far behind the test's output the stored log may lag.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// How often a cancel asked on another instance is looked for in the
/// database, in case its notification was missed.
const CANCEL_CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long reading what is left of the output may take after the whole
/// tree was killed, before the run ends without the rest.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);
/// Output lines that may wait in memory for the loop: the reader stops
/// reading (and the test blocks on its pipe) beyond that.
const OUTPUT_BACKLOG: usize = 64;
/// Cases stored per write: a huge parametrized file is stored over
/// several writes, each of a bounded size.
const MAX_CASES_PER_WRITE: usize = 2000;

/// What tells a process group from a later one of the same number: the
/// boot id and its leader's start time (see [`process::group_identity`]).
type GroupIdentity = (Option<String>, Option<u64>);

/// What wakes the loop.
pub enum Event {
    Line(Vec<u8>),
    /// The output pipe is closed: every process holding it is gone.
    OutputEnd,
    /// The test process (the supervisor) ended, with this status if it
    /// could be read.
    Exited(Option<ExitStatus>),
    /// What pytest reported, through the plugin's socket.
    Report(ReporterEvent),
    /// The plugin hung up: its process is gone.
    ReportEnd,
    /// Look at the flags: a cancel or a shutdown may have come.
    Wake,
}

/// How other threads reach a running run: a flag to set and a nudge.
#[derive(Clone)]
pub struct RunControl {
    cancel: Arc<AtomicBool>,
    wake: SyncSender<Event>,
}

impl RunControl {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn wake(&self) {
        // A full channel wakes the loop anyway.
        let _ = self.wake.try_send(Event::Wake);
    }
}

/// How the scheduler reaches a run, and the run's ends of its events.
pub type Channel = (RunControl, SyncSender<Event>, Receiver<Event>);

/// The channel a run's events come through, made before the run starts so
/// that its control can be registered first.
pub fn channel() -> Channel {
    let (tx, rx) = mpsc::sync_channel(OUTPUT_BACKLOG);
    let control = RunControl {
        cancel: Arc::new(AtomicBool::new(false)),
        wake: tx.clone(),
    };
    (control, tx, rx)
}

/// Why a run is being stopped before pytest ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Cancelled,
    TimedOut,
    ShutDown,
    LeaseLost,
}

/// The steps of a stop, each after the previous one had its grace: ask
/// politely twice, then have the supervisor kill the whole tree, then (if
/// the supervisor itself is stuck) kill the process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopStep {
    Signal(Signal),
    KillTree,
}

const STOP_STEPS: [StopStep; 4] = [
    StopStep::Signal(Signal::SIGINT),
    StopStep::Signal(Signal::SIGTERM),
    StopStep::KillTree,
    StopStep::Signal(Signal::SIGKILL),
];
/// The step a lost lease starts at: no time to be gentle.
const LEASE_LOST_STEP: usize = 2;
/// After a lost lease, how long the supervisor gets to kill the tree.
const LEASE_LOST_GRACE: Duration = Duration::from_millis(500);

/// A stop under way: the steps taken so far and when the last one was.
struct Stopping {
    reason: StopReason,
    stage: usize,
    since: Instant,
}

/// How the test process ended, as the loop saw it.
pub struct Ended {
    pub exit: Option<ExitStatus>,
    pub stop: Option<StopReason>,
    pub log: LogBuffer,
    /// pytest's closing line as read from the output, for when the
    /// reporter plugin said nothing.
    pub progress: Progress,
    pub results: Results,
    /// What is stored of the run, and the cases not stored yet.
    pub stored: Stored,
    pub unstored_cases: Vec<CaseResult>,
    /// The setup made ahead for the run thought next on the environment.
    pub next_setup: Option<RunSetup>,
}

/// The lease, from the runner's side: renewed every third of its length,
/// and given up (the run killed) before it can expire.
struct LeaseClock {
    lease: Duration,
    margin: Duration,
    renewed_at: Instant,
    next_renewal: Instant,
}

impl LeaseClock {
    fn new(lease: Duration, started: Instant) -> LeaseClock {
        LeaseClock {
            lease,
            margin: margin(lease),
            renewed_at: started,
            next_renewal: started + lease / 3,
        }
    }

    /// When the run must be stopped if no renewal succeeds before.
    fn deadline(&self) -> Instant {
        self.renewed_at + self.lease.saturating_sub(self.margin)
    }
}

/// Kill before the lease can expire: time for the kill itself.
pub fn margin(lease: Duration) -> Duration {
    (lease / 4).max(Duration::from_millis(500))
}

/// A test process just started: the supervisor, its output pipe and the
/// socket its reporter plugin will connect to.
pub struct TestProcess {
    pub child: Child,
    pub output: std::io::PipeReader,
    pub reporter: ReporterSocket,
    /// See [`process::Started::warm_marker`].
    pub warm_marker: Option<Vec<u8>>,
}

pub struct Supervision<'a> {
    ctx: &'a RunnerContext,
    claim: &'a Claim,
    control: RunControl,
    events: Receiver<Event>,
    heartbeat: Option<ChildStdin>,
    pgid: i32,
    started: Instant,
    timeout: Duration,
    lease: LeaseClock,
    next_flush: Instant,
    next_cancel_check: Instant,
    log: LogBuffer,
    progress: Progress,
    results: Results,
    /// Cases reported and not stored yet.
    unstored_cases: Vec<CaseResult>,
    stored_cases: i32,
    flushed_progress: RunSummary,
    stopping: Option<Stopping>,
    /// Set once the test process ended; `None` inside when its status
    /// could not be read.
    exit: Option<Option<ExitStatus>>,
    exited_at: Option<Instant>,
    output_done: bool,
    report_done: bool,
    leftovers_killed: bool,
    /// Environment entries of which every process the tests started has
    /// one.
    leftovers_markers: Vec<Vec<u8>>,
    /// Tells the reporter socket's reader that the run is over.
    over: Arc<AtomicBool>,
    /// What waits until this run's test process is past its start: its
    /// process group's identity to record (see [`Supervision::record_group`]),
    /// and the run before it to wrap up.
    unrecorded_group: Option<GroupIdentity>,
    previous: Option<FinishedRun>,
    /// Whether the run thought next is still to be set up ahead of the
    /// finish (see [`Supervision::set_up_next`]), and its setup.
    next_to_set_up: bool,
    next_setup: Option<RunSetup>,
}

/// `NAME=value` of the variable that names the run's reporter socket, as
/// every process the tests start inherits it.
pub fn leftovers_marker(reporter_socket: &Path) -> Vec<u8> {
    format!("{}={}", super::EVENTS_VAR, reporter_socket.display()).into_bytes()
}

impl<'a> Supervision<'a> {
    /// Takes over a started test process: its output pipe, its exit and
    /// its heartbeat. `started` is when the lease was taken.
    pub fn new(
        ctx: &'a RunnerContext,
        claim: &'a Claim,
        (control, events_tx, events): (RunControl, SyncSender<Event>, Receiver<Event>),
        process: TestProcess,
        started: Instant,
        timeout: Duration,
    ) -> std::io::Result<Supervision<'a>> {
        let TestProcess {
            mut child,
            output,
            reporter,
            warm_marker,
        } = process;
        let pgid = child.id() as i32;
        // Read before the exit's thread can reap the group's leader, while
        // its start time is still there to read.
        let group_identity = process::group_identity(pgid);
        let heartbeat = child.stdin.take();
        let run_id = claim.run.id;
        let over = Arc::new(AtomicBool::new(false));
        // A warm start's interpreter has the run's variables only in its
        // memory: what it forks without an exec shows its own marker.
        let markers = std::iter::once(leftovers_marker(reporter.path()))
            .chain(warm_marker)
            .collect();
        reporter.serve(run_id, pgid, events_tx.clone(), Arc::clone(&over))?;
        let lines = events_tx.clone();
        std::thread::Builder::new()
            .name(format!("run-{run_id}-output"))
            .spawn(move || pump_output(output, lines))?;
        std::thread::Builder::new()
            .name(format!("run-{run_id}-exit"))
            .spawn(move || {
                let _ = events_tx.send(Event::Exited(child.wait().ok()));
            })?;
        let now = Instant::now();
        Ok(Supervision {
            ctx,
            claim,
            control,
            events,
            heartbeat,
            pgid,
            started: now,
            timeout,
            lease: LeaseClock::new(ctx.config.lease(), started),
            next_flush: now + FLUSH_EVERY,
            next_cancel_check: now + CANCEL_CHECK_EVERY,
            log: LogBuffer::new(ctx.config.log_max_bytes),
            progress: Progress::default(),
            results: Results::default(),
            unstored_cases: Vec::new(),
            stored_cases: 0,
            flushed_progress: RunSummary::default(),
            stopping: None,
            exit: None,
            exited_at: None,
            output_done: false,
            report_done: false,
            leftovers_killed: false,
            leftovers_markers: markers,
            over,
            unrecorded_group: Some(group_identity),
            previous: None,
            next_to_set_up: false,
            next_setup: None,
        })
    }

    /// Wraps up `previous` (see [`FinishedRun`]) once the test process
    /// is past its start.
    pub fn wrapping_up(mut self, previous: Option<FinishedRun>) -> Supervision<'a> {
        self.previous = previous;
        self
    }

    /// With `hand_off` (the finish may start the environment's next run),
    /// sets that run up while this one's interpreter exits.
    pub fn setting_up_next(mut self, hand_off: bool) -> Supervision<'a> {
        self.next_to_set_up = hand_off;
        self
    }

    /// Once pytest has hung up and only its interpreter's exit is left
    /// (tens of milliseconds), sets up the run waiting first on the
    /// environment, the one the finish most likely hands it on to: its
    /// files, directory and socket are then not made while the
    /// environment waits between two runs.
    fn set_up_next(&mut self) {
        if !self.next_to_set_up || !self.report_done || self.exit.is_some() {
            return;
        }
        self.next_to_set_up = false;
        self.next_setup = RunSetup::for_next_on(self.ctx, self.claim.environment.id);
    }

    /// Records the run's process group with its lease, for a restarted
    /// instance to kill (see `Scheduler::recover_past_life`), with what
    /// tells it from a later group of the same number. Until then, should
    /// this instance die, the supervisor (told by its parent-death signal,
    /// or by its heartbeat's end) kills the tree.
    fn record_group(&mut self) {
        let Some((boot_id, start_ticks)) = self.unrecorded_group.take() else {
            return;
        };
        if let Ok(mut conn) = self.ctx.pool.get() {
            let _ = leases::record_pgid(
                &mut conn,
                self.claim.environment.id,
                self.claim.fence,
                self.pgid,
                boot_id.as_deref(),
                start_ticks,
            );
        }
    }

    /// Runs to the end: the test process exited and its output is read,
    /// or the tree was killed.
    pub fn run(mut self) -> Ended {
        while !self.is_over() {
            self.wait_for_event();
            // The first wake-up comes with the test process's first
            // output or exit, or a flush later: it is past its start, and
            // two round trips to the database are no longer in its way.
            self.record_group();
            if let Some(previous) = self.previous.take() {
                previous.wrap_up();
            }
            let now = Instant::now();
            self.flush_if_due(now);
            self.renew_if_due(now);
            self.check_cancel(now);
            self.check_time_out(now);
            self.check_shutdown(now);
            self.clean_up_after_exit();
            self.escalate();
            self.set_up_next();
        }
        self.over.store(true, Ordering::SeqCst);
        // Nothing of the tree may outlive the run.
        if process::group_alive(self.pgid) {
            process::kill_group_and_wait(self.pgid, Duration::from_secs(10));
        }
        if self.exit.flatten().and_then(|s| s.signal()).is_some() {
            // The supervisor itself was killed: by a test running as the
            // service's user, or by a stop's last resort. Whatever the
            // tests moved out of the group has nobody else to kill it.
            let killed = process::kill_marked(&self.leftovers_markers, Duration::from_secs(10));
            if killed > 0 {
                tracing::warn!(
                    killed,
                    "the tests' supervisor was killed; so is what they left"
                );
                self.log.push(format!(
                    "test-executor: the tests' supervisor was killed; {killed} process(es) \
                     the tests had left outside their group were killed\n"
                ));
            }
        }
        self.unstored_cases.extend(self.results.take_finished());
        Ended {
            exit: self.exit.flatten(),
            stop: self.stopping.map(|s| s.reason),
            stored: Stored {
                log_bytes: self.log.pending().0,
                cases: self.stored_cases,
            },
            log: self.log,
            progress: self.progress,
            results: self.results,
            unstored_cases: self.unstored_cases,
            next_setup: self.next_setup,
        }
    }

    /// Over once the test process exited and its output and reports are
    /// read, or were given [`OUTPUT_DRAIN`] to arrive.
    fn is_over(&self) -> bool {
        let Some(exited) = self.exited_at else {
            return false;
        };
        let settled = self.output_done && (self.report_done || !self.results.connected);
        settled || exited.elapsed() >= OUTPUT_DRAIN
    }

    /// Sleeps until an event comes or the next thing is due, then takes
    /// every event already waiting.
    fn wait_for_event(&mut self) {
        let wait = self.next_due().saturating_duration_since(Instant::now());
        match self.events.recv_timeout(wait) {
            Ok(event) => self.take(event),
            Err(RecvTimeoutError::Timeout) => return,
            Err(RecvTimeoutError::Disconnected) => self.output_done = true,
        }
        while let Ok(event) = self.events.try_recv() {
            self.take(event);
        }
    }

    fn take(&mut self, event: Event) {
        match event {
            Event::Line(bytes) => {
                let text = output::to_log_text(&bytes);
                self.progress.observe(&text);
                self.log.push(text);
            }
            Event::OutputEnd => self.output_done = true,
            Event::Exited(status) => {
                self.exit = Some(status);
                self.exited_at = Some(Instant::now());
            }
            Event::Report(ReporterEvent::NotFound { nodeid }) => {
                self.log.push(format!(
                    "test-executor: {nodeid} was not found; it is not run\n"
                ));
            }
            Event::Report(event) => self.results.take(event),
            Event::ReportEnd => self.report_done = true,
            Event::Wake => {}
        }
    }

    /// The soonest of everything the loop does on time. Once a stop is
    /// under way, its own schedule replaces the time-out, the lease and the
    /// shutdown deadlines, which have passed.
    fn next_due(&self) -> Instant {
        let mut due = vec![
            self.next_flush,
            self.lease.next_renewal,
            self.next_cancel_check,
        ];
        match &self.stopping {
            None => {
                due.push(self.lease.deadline());
                due.push(self.started + self.timeout);
                due.extend(self.shutdown_deadline());
            }
            Some(stop) if stop.stage < STOP_STEPS.len() => {
                due.push(stop.since + self.step_grace(stop.reason));
            }
            Some(_) => {}
        }
        if let Some(exited) = self.exited_at {
            due.push(exited + OUTPUT_DRAIN);
            if !self.output_done && !self.leftovers_killed {
                due.push(Instant::now());
            }
        }
        due.into_iter().min().unwrap_or_else(Instant::now)
    }

    fn stop(&mut self, reason: StopReason) {
        match &mut self.stopping {
            // A lost lease overrides a gentler stop already under way.
            Some(current) if reason == StopReason::LeaseLost && current.reason != reason => {
                current.reason = reason;
                current.stage = current.stage.max(LEASE_LOST_STEP);
                current.since = Instant::now() - LEASE_LOST_GRACE;
            }
            Some(_) => {}
            None => {
                let lost = reason == StopReason::LeaseLost;
                self.stopping = Some(Stopping {
                    reason,
                    stage: if lost { LEASE_LOST_STEP } else { 0 },
                    // Due at once.
                    since: Instant::now() - self.step_grace(reason),
                })
            }
        }
    }

    fn step_grace(&self, reason: StopReason) -> Duration {
        match reason {
            StopReason::LeaseLost => LEASE_LOST_GRACE,
            _ => self.ctx.config.kill_grace,
        }
    }

    /// Takes the next step of a stop once the previous one had its grace.
    fn escalate(&mut self) {
        let grace = match &self.stopping {
            Some(stop) => self.step_grace(stop.reason),
            None => return,
        };
        let Some(stop) = self.stopping.as_mut() else {
            return;
        };
        if stop.stage >= STOP_STEPS.len() || stop.since.elapsed() < grace {
            return;
        }
        let step = STOP_STEPS[stop.stage];
        stop.stage += 1;
        stop.since = Instant::now();
        match step {
            StopStep::Signal(signal) => {
                if self.exit.is_none() || process::group_alive(self.pgid) {
                    process::signal_group(self.pgid, signal);
                }
            }
            StopStep::KillTree => {
                if let Some(supervisor) = self.heartbeat.as_mut() {
                    process::kill_tree(supervisor);
                }
            }
        }
    }

    /// The test process is gone but something it started still holds the
    /// output open: the run is over, so are they.
    fn clean_up_after_exit(&mut self) {
        if self.exit.is_some() && !self.output_done && !self.leftovers_killed {
            process::signal_group(self.pgid, Signal::SIGKILL);
            self.leftovers_killed = true;
        }
    }

    fn check_cancel(&mut self, now: Instant) {
        if self.control.cancel.load(Ordering::SeqCst) {
            self.stop(StopReason::Cancelled);
            return;
        }
        if now >= self.next_cancel_check {
            self.next_cancel_check = now + CANCEL_CHECK_EVERY;
            if self.cancel_requested_in_db() {
                self.stop(StopReason::Cancelled);
            }
        }
    }

    fn check_time_out(&mut self, now: Instant) {
        if now >= self.started + self.timeout {
            self.stop(StopReason::TimedOut);
        }
    }

    fn shutdown_deadline(&self) -> Option<Instant> {
        let at = self.ctx.shutdown_at.lock().ok().and_then(|at| *at)?;
        Some(at + self.ctx.config.shutdown_grace)
    }

    fn check_shutdown(&mut self, now: Instant) {
        if self.shutdown_deadline().is_some_and(|at| now >= at) {
            self.stop(StopReason::ShutDown);
        }
    }

    fn renew_if_due(&mut self, now: Instant) {
        if now >= self.lease.next_renewal {
            let renew_every = self.lease.lease / 3;
            self.lease.next_renewal = now + renew_every;
            let config = &self.ctx.config;
            let renewed = self
                .ctx
                .pool
                .get()
                .map_err(|e| e.to_string())
                .and_then(|mut conn| {
                    leases::renew(
                        &mut conn,
                        self.claim.environment.id,
                        self.claim.fence,
                        config.lease_secs,
                    )
                    .map_err(|e| e.to_string())
                });
            match renewed {
                Ok(true) => {
                    self.lease.renewed_at = now;
                    self.send_heartbeat();
                }
                Ok(false) => {
                    tracing::warn!("lease lost: another instance reclaimed the environment");
                    self.stop(StopReason::LeaseLost);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease renewal failed; will retry");
                    self.lease.next_renewal = now + Duration::from_millis(250).min(renew_every);
                }
            }
        }
        if now >= self.lease.deadline() {
            tracing::warn!("lease could not be renewed in time; stopping the run");
            self.stop(StopReason::LeaseLost);
        }
    }

    /// Tells the supervisor the lease was just renewed.
    fn send_heartbeat(&mut self) {
        if let Some(stdin) = self.heartbeat.as_mut() {
            process::heartbeat(stdin);
        }
    }

    fn flush_if_due(&mut self, now: Instant) {
        if now < self.next_flush {
            return;
        }
        self.next_flush = now + FLUSH_EVERY;
        if self.flush() == Flushed::Lost {
            self.stop(StopReason::LeaseLost);
        }
    }

    /// The counts to show: pytest's own through the plugin, else (no
    /// plugin) the closing line once the output had it.
    fn summary(&self) -> RunSummary {
        if self.results.connected {
            self.results.summary()
        } else {
            self.progress.final_counts.clone().unwrap_or_default()
        }
    }

    /// Writes pending log, finished cases and progress, if any; kept for
    /// later if the database is away.
    fn flush(&mut self) -> Flushed {
        self.unstored_cases.extend(self.results.take_finished());
        let progress = self.summary();
        if !self.log.has_pending()
            && self.unstored_cases.is_empty()
            && progress == self.flushed_progress
        {
            return Flushed::Written;
        }
        let Ok(mut conn) = self.ctx.pool.get() else {
            return Flushed::Failed;
        };
        loop {
            let (log_bytes, pending) = self.log.pending();
            let piece = stored_log::pieces(pending, MAX_CHUNK_BYTES as usize)
                .first()
                .copied()
                .unwrap_or("");
            let len = piece.len();
            let cases = self.unstored_cases.len().min(MAX_CASES_PER_WRITE);
            let expected = Stored {
                log_bytes,
                cases: self.stored_cases,
            };
            let written = leases::append(
                &mut conn,
                self.claim.run.id,
                self.claim.fence,
                expected,
                piece,
                &self.unstored_cases[..cases],
                &progress,
            );
            match written {
                Ok(Written::Done) => {
                    self.log.mark_stored(len);
                    self.unstored_cases.drain(..cases);
                    self.stored_cases += cases as i32;
                    if !self.log.has_pending() && self.unstored_cases.is_empty() {
                        self.flushed_progress = progress;
                        return Flushed::Written;
                    }
                }
                Ok(Written::Behind(stored)) => self.catch_up(expected, stored),
                Ok(Written::Lost) => return Flushed::Lost,
                Err(e) => {
                    tracing::warn!(error = %e, "log write failed; output is kept until the database is back");
                    return Flushed::Failed;
                }
            }
        }
    }

    /// An earlier write committed though its answer was lost: what it
    /// stored is no longer pending.
    fn catch_up(&mut self, expected: Stored, stored: Stored) {
        let log_ahead = usize::try_from(stored.log_bytes - expected.log_bytes).unwrap_or(0);
        let cases_ahead = usize::try_from(stored.cases - expected.cases).unwrap_or(0);
        tracing::info!(
            log_ahead,
            cases_ahead,
            "an earlier log write was stored after all"
        );
        self.log
            .mark_stored(log_ahead.min(self.log.pending().1.len()));
        self.unstored_cases
            .drain(..cases_ahead.min(self.unstored_cases.len()));
        self.stored_cases = stored.cases;
    }

    fn cancel_requested_in_db(&self) -> bool {
        self.ctx
            .pool
            .get()
            .ok()
            .and_then(|mut conn| leases::cancel_requested(&mut conn, self.claim.run.id).ok())
            .unwrap_or(false)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flushed {
    Written,
    Failed,
    Lost,
}

/// Reads the test tree's output into lines for the loop, until the pipe
/// closes (every process holding it is gone) or the loop is gone.
fn pump_output(mut reader: std::io::PipeReader, events: SyncSender<Event>) {
    let mut splitter = LineSplitter::default();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                let mut closed = false;
                splitter.push(&buffer[..n], |line| {
                    closed |= events.send(Event::Line(line)).is_err();
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
        let _ = events.send(Event::Line(rest));
    }
    let _ = events.send(Event::OutputEnd);
}
