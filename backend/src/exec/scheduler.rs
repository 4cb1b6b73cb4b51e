//! Hands queued runs to runner threads: one run at a time per environment
//! (an in-process guard set plus the database's busy row), oldest queued
//! run first, at most `MAX_PARALLEL_RUNS` at once, and takes back
//! environments whose holder is gone.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::events::{FinishedRuns, RunEvents};
use super::runner::setup::RunSetup;
use super::runner::supervision::{self, RunControl};
use super::runner::{self, RunnerContext};
use crate::db::{self, leases};
use crate::sys::process;
use crate::telemetry::metrics;
use shared::{RunStatus, RunSummary};

/// Environments this process is running a test on. Claiming one takes its
/// guard first, so a process never even asks the database for an
/// environment it already holds.
#[derive(Default)]
struct EnvironmentGuards {
    held: Mutex<HashSet<i32>>,
}

struct EnvironmentGuard {
    guards: Arc<EnvironmentGuards>,
    environment_id: i32,
}

impl EnvironmentGuards {
    fn holds(&self, environment_id: i32) -> bool {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&environment_id)
    }

    fn try_acquire(self: &Arc<Self>, environment_id: i32) -> Option<EnvironmentGuard> {
        let mut held = self.held.lock().ok()?;
        held.insert(environment_id).then(|| EnvironmentGuard {
            guards: Arc::clone(self),
            environment_id,
        })
    }
}

impl Drop for EnvironmentGuard {
    fn drop(&mut self) {
        // A panic elsewhere must not keep the environment.
        self.guards
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.environment_id);
    }
}

/// A run for a run thread to go on with: its claim, its channel, when the
/// claim began and, if a finish handed it on, the run to wrap up and the
/// setup made ahead of that finish.
type NextRun = (
    leases::Claim,
    supervision::Channel,
    Instant,
    Option<runner::FinishedRun>,
    Option<RunSetup>,
);

/// A run's place in this process: its environment's guard, its entry in
/// `runs` and its count in `running`. Dropping it gives them all back and
/// tells whoever waits for the run, so no run thread, however it ends
/// (even by a panic), keeps a parallel-run slot or an environment.
struct RunSlot {
    scheduler: Arc<Scheduler>,
    run_id: i64,
    guard: Option<EnvironmentGuard>,
}

impl RunSlot {
    /// Passes the slot and the environment's guard on to the run that the
    /// finish of this one claimed, and tells whoever waits for this one
    /// that it ended.
    fn hand_over(&mut self, handed: runner::HandedOff) -> NextRun {
        let runner::HandedOff {
            claim,
            claimed_at,
            previous,
            setup,
        } = handed;
        let scheduler = &self.scheduler;
        let channel = supervision::channel();
        if let Ok(mut runs) = scheduler.runs.lock() {
            runs.remove(&self.run_id);
            runs.insert(claim.run.id, channel.0.clone());
        }
        scheduler.events.finished(self.run_id);
        self.run_id = claim.run.id;
        (claim, channel, claimed_at, Some(previous), setup)
    }
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        let scheduler = &self.scheduler;
        scheduler.events.finished(self.run_id);
        // The environment first, so that the wake-up can claim it again.
        let environment_id = self.guard.as_ref().map(|g| g.environment_id);
        drop(self.guard.take());
        scheduler
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.run_id);
        let was_full = scheduler.running.fetch_sub(1, Ordering::SeqCst)
            >= scheduler.ctx.config.max_parallel_runs;
        // Under the cap, other environments may have waited for this slot:
        // the sweep gives it to the oldest waiter. Otherwise everything
        // startable already runs, and only this environment's queue moved.
        match environment_id {
            Some(environment_id) if !was_full => scheduler.wake_for(environment_id),
            _ => scheduler.wake(),
        }
    }
}

/// A parallel-run slot (counted in `running`) and an environment's guard,
/// taken before a claim is tried. A run that starts takes both over (see
/// [`RunSlot`]); dropped unused, the ticket gives them back.
pub struct StartTicket {
    scheduler: Arc<Scheduler>,
    guard: Option<EnvironmentGuard>,
    /// Taken outside the scheduler's loop, which may have passed the
    /// environment or the slot by meanwhile: it looks again on return.
    outside_the_loop: bool,
}

impl StartTicket {
    /// Who claims with this ticket: this instance, under its lease and
    /// runner labels.
    pub fn claimer(&self) -> leases::Claimer<'_> {
        self.scheduler.claimer()
    }

    /// The guard, for the run that keeps the slot: dropped without it,
    /// the ticket gives nothing back.
    fn into_guard(mut self) -> Option<EnvironmentGuard> {
        self.guard.take()
    }
}

impl Drop for StartTicket {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        let environment_id = guard.environment_id;
        drop(guard);
        let scheduler = &self.scheduler;
        let was_full = scheduler.running.fetch_sub(1, Ordering::SeqCst)
            >= scheduler.ctx.config.max_parallel_runs;
        if self.outside_the_loop {
            if was_full {
                scheduler.wake();
            } else {
                scheduler.wake_for(environment_id);
            }
        }
    }
}

/// What a panic said, for the run's `status_reason`.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "it panicked".into())
}

/// Finishes a run whose runner panicked as `error` with `reason`, under its
/// fence, keeping its log and progress so far, and releases its
/// environment. If the database does not answer, the lease expires and a
/// sweep finishes the run as "executor lost" instead.
fn finish_failed(ctx: &RunnerContext, claim: &leases::Claim, reason: &str, took: Duration) {
    let written = ctx
        .pool
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| {
            let Some(run) = db::runs::find(&mut conn, claim.run.id).map_err(|e| e.to_string())?
            else {
                return Ok(false);
            };
            let outcome = leases::Outcome {
                status: RunStatus::Error,
                reason: Some(reason.to_string()),
                exit_code: None,
                summary: RunSummary {
                    total: run.total,
                    passed: run.passed,
                    failed: run.failed,
                    skipped: run.skipped,
                    errors: run.errors,
                    xfailed: run.xfailed,
                    xpassed: run.xpassed,
                    subtests_passed: run.subtests_passed,
                    completed: run.completed,
                },
                cases: Vec::new(),
                log_tail: format!("\n{reason}\n"),
                junit_xml: None,
            };
            // Whatever the runner stored before it failed stays.
            let stored = leases::Stored {
                log_bytes: run.log_bytes,
                cases: run.case_count,
            };
            leases::finish(&mut conn, claim, ctx.config.lease_secs, stored, &outcome)
                .map(|written| written == leases::Written::Done)
                .map_err(|e| e.to_string())
        });
    match written {
        Ok(true) => metrics::global().run_finished(RunStatus::Error, took),
        Ok(false) => tracing::warn!(run_id = claim.run.id, "the run was already finished"),
        Err(e) => tracing::error!(run_id = claim.run.id, error = %e,
            "cannot finish the run; its lease will expire"),
    }
}

pub struct Scheduler {
    ctx: RunnerContext,
    guards: Arc<EnvironmentGuards>,
    wake: Arc<Notify>,
    /// A full sweep is asked for (reclaim, deadlines, every candidate).
    sweep_asked: AtomicBool,
    /// Environments to claim on at the next wake-up, without a sweep: a
    /// run was queued for them or they were freed.
    hinted: Mutex<HashSet<i32>>,
    running: Arc<AtomicUsize>,
    /// How to reach the runs this process is running, by run id.
    runs: Arc<Mutex<HashMap<i64, RunControl>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stopping: AtomicBool,
    events: RunEvents,
    /// Set once the runs of a past life are finished.
    recovered: tokio::sync::watch::Sender<bool>,
    /// The live instances as last seen, and when: when one goes, the
    /// reasons queued runs show may change.
    live_instances: Mutex<(Option<Instant>, Vec<String>)>,
}

impl Scheduler {
    pub fn new(ctx: RunnerContext) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            ctx,
            guards: Arc::default(),
            wake: Arc::new(Notify::new()),
            sweep_asked: AtomicBool::new(true),
            hinted: Mutex::default(),
            running: Arc::default(),
            runs: Arc::default(),
            threads: Mutex::default(),
            stopping: AtomicBool::new(false),
            events: RunEvents::default(),
            recovered: tokio::sync::watch::Sender::new(false),
            live_instances: Mutex::default(),
        })
    }

    /// Asks the scheduler for a full sweep now.
    pub fn wake(&self) {
        self.sweep_asked.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Asks the scheduler to claim on one environment now: a run was queued
    /// for it or it was freed. Cheaper than a sweep, which the tick still
    /// makes for whatever this misses.
    pub fn wake_for(&self, environment_id: i32) {
        self.hinted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(environment_id);
        self.wake.notify_one();
    }

    /// A ticket to claim a run just queued for `environment_id` in the
    /// request that queues it, if this instance may start one there now:
    /// it has finished the runs of its past life, is not stopping, has a
    /// free slot and is not already running a test there.
    pub fn ticket_for_new_run(self: &Arc<Self>, environment_id: i32) -> Option<StartTicket> {
        if self.stopping.load(Ordering::SeqCst) || !*self.recovered.borrow() {
            return None;
        }
        let mut ticket = self.take_ticket(environment_id)?;
        ticket.outside_the_loop = true;
        Some(ticket)
    }

    /// Who claims in a finish, for the run after it on the same
    /// environment; nobody once the service is stopping.
    fn hand_off_claimer(&self) -> Option<leases::Claimer<'_>> {
        (!self.stopping.load(Ordering::SeqCst)).then(|| self.claimer())
    }

    fn claimer(&self) -> leases::Claimer<'_> {
        leases::Claimer {
            holder: &self.ctx.config.instance_id,
            lease_secs: self.ctx.config.lease_secs,
            runner_labels: self.ctx.config.runner_labels.as_deref(),
            run_tokens: self
                .ctx
                .config
                .auth
                .enabled
                .then(|| i64::try_from(self.ctx.config.run_timeout.as_secs()).unwrap_or(i64::MAX)),
        }
    }

    /// The environment's guard and a slot under `MAX_PARALLEL_RUNS`, both
    /// or neither.
    fn take_ticket(self: &Arc<Self>, environment_id: i32) -> Option<StartTicket> {
        let guard = self.guards.try_acquire(environment_id)?;
        let max = self.ctx.config.max_parallel_runs;
        self.running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(StartTicket {
            scheduler: Arc::clone(self),
            guard: Some(guard),
            outside_the_loop: false,
        })
    }

    /// Waits until the runs of a past life are finished, at most `patience`.
    pub async fn wait_recovered(&self, patience: Duration) -> bool {
        let mut recovered = self.recovered.subscribe();
        tokio::time::timeout(patience, recovered.wait_for(|done| *done))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    /// The pool runs and the scheduler use.
    pub fn pool(&self) -> &crate::db::PgPool {
        &self.ctx.pool
    }

    /// Another instance finished run `id` (heard through the listener).
    pub fn heard_finished(&self, id: i64) {
        self.events.finished(id);
    }

    /// Runs finishing from now on, on this instance or another.
    pub fn finished_runs(&self) -> FinishedRuns {
        self.events.subscribe()
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Tells a local run to stop; other instances see the database flag.
    pub fn cancel_local(&self, run_id: i64) {
        let control = self
            .runs
            .lock()
            .ok()
            .and_then(|runs| runs.get(&run_id).cloned());
        if let Some(control) = control {
            control.cancel();
        }
    }

    /// Finishes what this instance held in a past life (same `INSTANCE_ID`)
    /// and kills the process groups it had recorded.
    pub fn recover_past_life(&self) -> Result<usize, String> {
        let mut conn = self.ctx.pool.get().map_err(|e| e.to_string())?;
        let reclaimed = leases::reclaim(
            &mut conn,
            Some(&self.ctx.config.instance_id),
            "executor lost (its instance restarted)",
        )
        .map_err(|e| e.to_string())?;
        for lease in &reclaimed {
            tracing::warn!(
                run_id = lease.run_id,
                environment_id = lease.environment_id,
                "finished a run held by this instance before it restarted"
            );
            let Some(pgid) = lease.pgid else {
                continue;
            };
            let start_ticks = lease.start_ticks.and_then(|t| u64::try_from(t).ok());
            if process::group_is_ours(pgid, lease.boot_id.as_deref(), start_ticks) {
                process::kill_group_and_wait(pgid, Duration::from_secs(5));
            } else {
                tracing::warn!(
                    run_id = lease.run_id,
                    pgid,
                    "not killing process group: it is not the one this instance started \
                     (the machine rebooted, or its number now belongs to another process)"
                );
            }
        }
        Ok(reclaimed.len())
    }

    /// The scheduling loop: runs until the service stops. It starts by
    /// finishing what this instance held in a past life, retried at each
    /// tick until the database answers.
    pub async fn run(self: Arc<Self>) {
        let tick = self.ctx.config.tick;
        let mut recovered = false;
        let mut next_sweep = Instant::now();
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            if !recovered {
                let scheduler = Arc::clone(&self);
                match tokio::task::spawn_blocking(move || scheduler.recover_past_life()).await {
                    Ok(Ok(n)) => {
                        recovered = true;
                        self.recovered.send_replace(true);
                        if n > 0 {
                            tracing::warn!(
                                runs = n,
                                "finished runs left by a past life of this instance"
                            );
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot check for runs of a past life yet")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot check for runs of a past life yet")
                    }
                }
            }
            let sweep = !recovered
                || self.sweep_asked.swap(false, Ordering::SeqCst)
                || Instant::now() >= next_sweep;
            let scheduler = Arc::clone(&self);
            if sweep {
                // The sweep looks at every environment, hinted ones too.
                self.take_hinted();
                let dispatched = tokio::task::spawn_blocking(move || scheduler.dispatch()).await;
                // The next sweep: the tick, or the moment a reservation or
                // maintenance ends, whichever is first.
                let sleep = match dispatched {
                    Ok(Ok(Some(due))) => due.min(tick),
                    Ok(Ok(None)) => tick,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "scheduling failed; retrying");
                        tick
                    }
                    Err(_) => tick,
                };
                next_sweep = Instant::now() + sleep;
            } else {
                let hinted = self.take_hinted();
                if !hinted.is_empty() {
                    let claimed =
                        tokio::task::spawn_blocking(move || scheduler.claim_on(hinted)).await;
                    if let Ok(Err(e)) = claimed {
                        tracing::warn!(error = %e, "claiming failed; the next sweep retries");
                    }
                }
            }
            let sleep = next_sweep.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(sleep, self.wake.notified()).await;
        }
    }

    fn take_hinted(&self) -> Vec<i32> {
        let mut hinted = self.hinted.lock().unwrap_or_else(PoisonError::into_inner);
        let mut taken: Vec<i32> = hinted.drain().collect();
        // Lower ids first, as the sweep orders ties.
        taken.sort_unstable();
        taken
    }

    /// Claims on the given environments alone, while there is room: no
    /// reclaim sweep, no candidates query. What finds no room waits for
    /// the sweep a freed slot asks for.
    fn claim_on(self: &Arc<Self>, environments: Vec<i32>) -> Result<(), String> {
        let max = self.ctx.config.max_parallel_runs;
        // An environment this process runs a test on is not asked about:
        // most often the hint is the notice of a run this process has
        // just claimed and started itself.
        let environments: Vec<i32> = environments
            .into_iter()
            .filter(|id| !self.guards.holds(*id))
            .collect();
        if self.running() >= max || environments.is_empty() {
            return Ok(());
        }
        let mut conn = self.ctx.pool.get().map_err(|e| e.to_string())?;
        for environment_id in environments {
            if self.running() >= max || self.stopping.load(Ordering::SeqCst) {
                break;
            }
            self.claim_one(&mut conn, environment_id);
        }
        Ok(())
    }

    /// Claims what comes next on one environment and starts it. True if a
    /// run or a reservation took the environment.
    fn claim_one(self: &Arc<Self>, conn: &mut db::PgConn, environment_id: i32) -> bool {
        let Some(ticket) = self.take_ticket(environment_id) else {
            return false;
        };
        let claimed_at = Instant::now();
        match leases::claim(conn, environment_id, ticket.claimer()) {
            Ok(leases::Claimed::Run(claim)) => {
                self.start(*claim, claimed_at, ticket);
                true
            }
            Ok(leases::Claimed::Reservation(id)) => {
                tracing::info!(
                    environment_id,
                    reservation_id = id,
                    "reservation holds its environment now"
                );
                true
            }
            Ok(leases::Claimed::Nothing) => false,
            // One environment's trouble (a lock held by a stuck session)
            // never keeps the others waiting.
            Err(e) => {
                tracing::warn!(environment_id, error = %e, "cannot claim; trying the others");
                false
            }
        }
    }

    /// One pass: reclaim expired leases, end reservations and maintenance
    /// whose time is up, then start what comes next while there is room.
    /// Answers how soon something ends by itself, if it does.
    fn dispatch(self: &Arc<Self>) -> Result<Option<Duration>, String> {
        let mut conn = self.ctx.pool.get().map_err(|e| e.to_string())?;
        db::reservations::end_expired(&mut conn, None).map_err(|e| e.to_string())?;
        db::environments::end_expired_maintenance(&mut conn).map_err(|e| e.to_string())?;
        for lease in leases::reclaim(&mut conn, None, "executor lost").map_err(|e| e.to_string())? {
            tracing::warn!(
                run_id = lease.run_id,
                environment_id = lease.environment_id,
                "reclaimed an expired lease; its run is finished as executor lost"
            );
            self.events.finished(lease.run_id);
        }
        self.once_a_tick(&mut conn).map_err(|e| e.to_string())?;
        let max = self.ctx.config.max_parallel_runs;
        while self.running() < max && !self.stopping.load(Ordering::SeqCst) {
            let room = (max - self.running()) as i64;
            let runner_labels = self.ctx.config.runner_labels.as_deref();
            let candidates = leases::candidates(&mut conn, room * 4 + 8, runner_labels)
                .map_err(|e| e.to_string())?;
            let mut started_any = false;
            for environment_id in candidates {
                if self.running() >= max || self.stopping.load(Ordering::SeqCst) {
                    break;
                }
                started_any |= self.claim_one(&mut conn, environment_id);
            }
            if !started_any {
                break;
            }
        }
        let next = db::reservations::next_deadline(&mut conn).map_err(|e| e.to_string())?;
        let now = db::reservations::now(&mut conn).map_err(|e| e.to_string())?;
        Ok(next.map(|at| (at - now).to_std().unwrap_or(Duration::ZERO)))
    }

    /// Once a tick: if an instance went since the last look, says so to
    /// the polled views (its death changed nothing they watch otherwise),
    /// and records the finished runs left listed for longer than a lease
    /// (see [`runner::FinishedRun`]): by a stopped instance, or past a
    /// stuck session's lock. A live one records its own well within a lease.
    fn once_a_tick(&self, conn: &mut db::PgConn) -> diesel::QueryResult<()> {
        let mut seen = self
            .live_instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.0.is_some_and(|at| at.elapsed() < self.ctx.config.tick) {
            return Ok(());
        }
        let live = db::instance::live_names(conn)?;
        let gone = seen.1.iter().any(|name| !live.contains(name));
        if gone {
            db::instance::live_set_changed(conn, &self.ctx.config.instance_id)?;
        }
        *seen = (Some(Instant::now()), live);
        // A row held by a stuck session fails the sweep, never the pass.
        match leases::record_left_over_runs(conn, self.ctx.config.lease_secs) {
            Ok(0) => {}
            Ok(recorded) => tracing::info!(recorded, "recorded finished runs left listed"),
            Err(e) => tracing::warn!(error = %e, "finished runs left listed are recorded later"),
        }
        Ok(())
    }

    /// Starts a claimed run on a thread of its own, which takes over the
    /// ticket's slot and guard; `claimed_at` is from before the claim's
    /// transaction.
    pub fn start(self: &Arc<Self>, claim: leases::Claim, claimed_at: Instant, ticket: StartTicket) {
        let run_id = claim.run.id;
        let channel = supervision::channel();
        if let Ok(mut runs) = self.runs.lock() {
            runs.insert(run_id, channel.0.clone());
        }
        let slot = RunSlot {
            scheduler: Arc::clone(self),
            run_id,
            guard: ticket.into_guard(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("run-{run_id}"))
            .spawn(move || {
                // Given back when this thread ends, whichever way it does.
                let mut slot = slot;
                let mut next = Some((claim, channel, claimed_at, None, None));
                // Each run's finish may claim the next on its environment:
                // that run goes on here, in the same slot and guard.
                while let Some((claim, channel, claimed_at, previous, setup)) = next.take() {
                    let scheduler = Arc::clone(&slot.scheduler);
                    let ctx = &scheduler.ctx;
                    let kept = claim.clone();
                    let hand_off = scheduler.hand_off_claimer();
                    let ran = panic::catch_unwind(AssertUnwindSafe(|| {
                        runner::execute(ctx, claim, channel, claimed_at, previous, setup, hand_off)
                    }));
                    match ran {
                        Ok(handed) => next = handed.map(|handed| slot.hand_over(handed)),
                        Err(panicked) => {
                            // The test process tree is already dying: the
                            // runner's end of the supervisor's heartbeat
                            // pipe closed as the panic unwound.
                            let reason =
                                format!("the runner failed: {}", panic_message(&*panicked));
                            tracing::error!(run_id = kept.run.id, %reason, "run thread panicked");
                            finish_failed(ctx, &kept, &reason, claimed_at.elapsed());
                        }
                    }
                }
            });
        match spawned {
            Ok(handle) => {
                if let Ok(mut threads) = self.threads.lock() {
                    threads.retain(|t| !t.is_finished());
                    threads.push(handle);
                }
            }
            Err(e) => {
                // The claim stays; its lease expires and a sweep finishes
                // it. The slot went back as the closure was dropped.
                tracing::error!(run_id, error = %e, "cannot start a run thread");
            }
        }
    }

    /// Stops claiming; running tests get `SHUTDOWN_GRACE_SECS` to finish,
    /// then are stopped and finished as "executor shut down". Returns once
    /// every run thread has written its outcome.
    pub fn shut_down(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake();
        if let Ok(mut at) = self.ctx.shutdown_at.lock() {
            at.get_or_insert_with(Instant::now);
        }
        // Each run looks at the shutdown time now, not at its next tick.
        if let Ok(runs) = self.runs.lock() {
            runs.values().for_each(RunControl::wake);
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduler() -> Arc<Scheduler> {
        let config = crate::config::Config::from_env().unwrap();
        let tests_root = crate::catalog::TestsRoot::open(&std::env::temp_dir()).unwrap();
        Scheduler::new(RunnerContext {
            // Never connected to: nothing here reaches the database.
            pool: db::build_pool("postgres://nobody@127.0.0.1:1/none", config.runner_pool()),
            config: Arc::new(config),
            tests_root,
            public_url: "http://127.0.0.1:1".into(),
            shutdown_at: Arc::default(),
            runtime: Arc::new(super::super::runner::plugin::RuntimeDir::create().unwrap()),
        })
    }

    #[test]
    fn a_panicking_run_thread_gives_its_slot_and_environment_back() {
        let scheduler = scheduler();
        let guard = scheduler.guards.try_acquire(7).unwrap();
        assert!(scheduler.guards.try_acquire(7).is_none(), "held once");
        scheduler.running.fetch_add(1, Ordering::SeqCst);
        let (control, _, _) = supervision::channel();
        scheduler.runs.lock().unwrap().insert(42, control);
        let mut finished = scheduler.finished_runs();
        let slot = RunSlot {
            scheduler: Arc::clone(&scheduler),
            run_id: 42,
            guard: Some(guard),
        };
        let joined = std::thread::spawn(move || {
            let _slot = slot;
            panic!("the runner tripped");
        })
        .join();
        assert!(joined.is_err());
        assert_eq!(scheduler.running(), 0);
        assert!(scheduler.runs.lock().unwrap().is_empty());
        assert!(
            scheduler.guards.try_acquire(7).is_some(),
            "the environment is back"
        );
        let heard = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(finished.wait_for(42, Duration::from_secs(1)));
        assert!(heard, "whoever waits for the run hears it ended");
    }

    #[test]
    fn panic_messages_are_kept_for_the_reason() {
        let text = panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(&*text), "plain");
        let formatted = panic::catch_unwind(|| panic!("run {}", 42)).unwrap_err();
        assert_eq!(panic_message(&*formatted), "run 42");
        let other = panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(&*other), "it panicked");
    }
}
