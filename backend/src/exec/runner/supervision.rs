//! One run's test process from start to end: its output into the log, its
//! lease kept alive, and every way it can be stopped (cancel, time-out,
//! lost lease, shutdown), each handled in one place.
//!
//! The loop sleeps until something happens: output or the end of it, the
//! test process exiting, a cancel or a shutdown (which wake it through the
//! same channel), or the next thing that is due (a log flush, a lease
//! renewal, the time-out, the next stop signal).

use std::io::Read;
use std::process::{Child, ChildStdin, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use shared::RunSummary;

use super::log::LogBuffer;
use super::output::{self, LineSplitter, Progress};
use super::RunnerContext;
use crate::db::leases::{self, Claim};
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

/// What wakes the loop.
pub enum Event {
    Line(Vec<u8>),
    /// The output pipe is closed: every process holding it is gone.
    OutputEnd,
    /// The test process (the supervisor) ended, with this status if it
    /// could be read.
    Exited(Option<ExitStatus>),
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

/// The channel a run's events come through, made before the run starts so
/// that its control can be registered first.
pub fn channel() -> (RunControl, SyncSender<Event>, Receiver<Event>) {
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

const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL];

/// A stop under way: the signals sent so far and when the last one went.
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
    pub progress: Progress,
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
    flushed_progress: RunSummary,
    stopping: Option<Stopping>,
    /// Set once the test process ended; `None` inside when its status
    /// could not be read.
    exit: Option<Option<ExitStatus>>,
    output_done: bool,
    leftovers_killed_at: Option<Instant>,
}

impl<'a> Supervision<'a> {
    /// Takes over a started test process: its output pipe, its exit and
    /// its heartbeat. `started` is when the lease was taken.
    pub fn new(
        ctx: &'a RunnerContext,
        claim: &'a Claim,
        (control, events_tx, events): (RunControl, SyncSender<Event>, Receiver<Event>),
        mut child: Child,
        output: std::io::PipeReader,
        started: Instant,
        timeout: Duration,
    ) -> std::io::Result<Supervision<'a>> {
        let pgid = child.id() as i32;
        let heartbeat = child.stdin.take();
        let run_id = claim.run.id;
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
            flushed_progress: RunSummary::default(),
            stopping: None,
            exit: None,
            output_done: false,
            leftovers_killed_at: None,
        })
    }

    /// Runs to the end: the test process exited and its output is read,
    /// or the tree was killed.
    pub fn run(mut self) -> Ended {
        while !self.is_over() {
            self.wait_for_event();
            let now = Instant::now();
            self.flush_if_due(now);
            self.renew_if_due(now);
            self.check_cancel(now);
            self.check_time_out(now);
            self.check_shutdown(now);
            self.clean_up_after_exit(now);
            self.escalate();
        }
        // Nothing of the tree may outlive the run.
        if process::group_alive(self.pgid) {
            process::kill_group_and_wait(self.pgid, Duration::from_secs(10));
        }
        Ended {
            exit: self.exit.flatten(),
            stop: self.stopping.map(|s| s.reason),
            log: self.log,
            progress: self.progress,
        }
    }

    fn is_over(&self) -> bool {
        self.exit.is_some()
            && (self.output_done
                || self
                    .leftovers_killed_at
                    .is_some_and(|at| at.elapsed() >= OUTPUT_DRAIN))
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
            Event::Exited(status) => self.exit = Some(status),
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
            Some(stop) if stop.stage < STOP_SIGNALS.len() => {
                due.push(stop.since + self.ctx.config.kill_grace);
            }
            Some(_) => {}
        }
        if let Some(killed) = self.leftovers_killed_at {
            due.push(killed + OUTPUT_DRAIN);
        } else if self.exit.is_some() && !self.output_done {
            due.push(Instant::now());
        }
        due.into_iter().min().unwrap_or_else(Instant::now)
    }

    fn stop(&mut self, reason: StopReason) {
        match &mut self.stopping {
            // A lost lease overrides a gentler stop already under way.
            Some(current) if reason == StopReason::LeaseLost && current.reason != reason => {
                current.reason = reason;
            }
            Some(_) => {}
            None => {
                self.stopping = Some(Stopping {
                    reason,
                    stage: 0,
                    since: Instant::now(),
                })
            }
        }
    }

    /// Sends the next signal once the previous one had its grace period; a
    /// lost lease goes straight to SIGKILL, there is no time to be gentle.
    fn escalate(&mut self) {
        let Some(stop) = self.stopping.as_mut() else {
            return;
        };
        if stop.reason == StopReason::LeaseLost && stop.stage < STOP_SIGNALS.len() {
            process::signal_group(self.pgid, Signal::SIGKILL);
            stop.stage = STOP_SIGNALS.len();
            return;
        }
        let grace = self.ctx.config.kill_grace;
        if stop.stage == 0 || (stop.since.elapsed() >= grace && stop.stage < STOP_SIGNALS.len()) {
            if self.exit.is_none() || process::group_alive(self.pgid) {
                process::signal_group(self.pgid, STOP_SIGNALS[stop.stage]);
            }
            stop.stage += 1;
            stop.since = Instant::now();
        }
    }

    /// The test process is gone but something it started still holds the
    /// output open: the run is over, so are they.
    fn clean_up_after_exit(&mut self, now: Instant) {
        if self.exit.is_some() && !self.output_done && self.leftovers_killed_at.is_none() {
            process::signal_group(self.pgid, Signal::SIGKILL);
            self.leftovers_killed_at = Some(now);
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
                        self.claim.run.environment_id,
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

    /// Writes pending log and progress, if any; kept for later if the
    /// database is away.
    fn flush(&mut self) -> Flushed {
        let progress = &self.progress.live;
        if !self.log.has_pending() && *progress == self.flushed_progress {
            return Flushed::Written;
        }
        let Ok(mut conn) = self.ctx.pool.get() else {
            return Flushed::Failed;
        };
        loop {
            let (offset, pending) = self.log.pending();
            let piece = stored_log::pieces(pending, MAX_CHUNK_BYTES as usize)
                .first()
                .copied()
                .unwrap_or("");
            let len = piece.len();
            match leases::append_log(
                &mut conn,
                self.claim.run.id,
                self.claim.fence,
                offset,
                piece,
                progress,
            ) {
                Ok(true) => {
                    self.log.mark_stored(len);
                    self.flushed_progress = progress.clone();
                    if !self.log.has_pending() {
                        return Flushed::Written;
                    }
                }
                Ok(false) => return Flushed::Lost,
                Err(e) => {
                    tracing::warn!(error = %e, "log write failed; output is kept until the database is back");
                    return Flushed::Failed;
                }
            }
        }
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
