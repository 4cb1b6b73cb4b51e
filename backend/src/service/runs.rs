//! Runs: queue one, read them, cancel one, run one again.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use shared::validate::{Fields, TestPath};
use shared::{Artifact, CaseResult, LogChunk, NewRun, Run, RunListQuery, RunStatus, RunTarget};
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::identity::Caller;
use super::{missing, ServiceError};
use crate::catalog::TestsRoot;
use crate::db;
use crate::db::leases::{Claim, Claimer, Queued};
use crate::db::models::{EnvironmentRow, NewRunRow, RunRow, Selection};

/// The most failed tests a "re-run failed" names one by one.
pub const MAX_RERUN_TESTS: usize = 10_000;

/// A run's fields, checked: who, where, what.
pub struct RunRequest {
    username: String,
    target: RunTarget,
    paths: Vec<TestPath>,
    hold_on_failure_minutes: Option<i32>,
    keyword: Option<String>,
    markers: Option<String>,
}

impl RunRequest {
    /// The environment it names, unless it is for a pool.
    pub fn environment_id(&self) -> Option<i32> {
        self.target.environment_id()
    }
}

/// Checks a new run's fields, every one of them, and that its paths name
/// test files or directories of the catalog. Reads the disk, not the
/// database: call it before taking a connection.
pub fn check(tests_root: &TestsRoot, new: &NewRun) -> Result<RunRequest, ServiceError> {
    let mut fields = Fields::default();
    let checked = new.check(&mut fields);
    if let Some(paths) = &checked.paths {
        if let Err(why) = paths_exist(tests_root, paths) {
            fields.add("paths", why);
        }
    }
    match (
        checked.username,
        checked.target,
        checked.paths,
        checked.hold_on_failure_minutes,
        checked.keyword,
        checked.markers,
    ) {
        (
            Some(username),
            Some(target),
            Some(paths),
            Some(hold_on_failure_minutes),
            Some(keyword),
            Some(markers),
        ) if fields.is_empty() => Ok(RunRequest {
            username,
            target,
            paths,
            hold_on_failure_minutes,
            keyword,
            markers,
        }),
        _ => Err(ServiceError::invalid(fields.into_inner())),
    }
}

/// Whether every path names a test file or directory of the catalog; the
/// first that does not, and why.
pub(super) fn paths_exist(tests_root: &TestsRoot, paths: &[TestPath]) -> Result<(), String> {
    paths
        .iter()
        .try_for_each(|path| tests_root.entry(path).map(|_| ()))
}

/// Queues a checked run. Its paths are checked again under the catalog
/// lock, so a file deleted since [`check`] is refused here rather than met
/// by the run.
///
/// With `start_here`, a run on a named environment that nothing is ahead
/// of is also claimed by it in the same transaction (see
/// [`db::leases::queue_on`]), so that it starts without waiting for the
/// scheduler; the caller then starts the claim at once.
pub fn create(
    conn: &mut PgConnection,
    tests_root: &TestsRoot,
    max_queued: i64,
    request: RunRequest,
    caller: &Caller,
    start_here: Option<Claimer<'_>>,
) -> Result<Created, ServiceError> {
    let environment_id = request.target.environment_id();
    if environment_id.is_none() {
        // A run on one environment is counted in the call that queues it.
        room_in_the_queues(conn, max_queued)?;
    }
    may_run_on(conn, caller, environment_id, request.target.label())?;
    let paths: Vec<String> = request.paths.iter().map(TestPath::as_arg).collect();
    let new = NewRunRow {
        username: request.username,
        environment_id,
        environment_label: request.target.label().map(str::to_string),
        paths: Value::from(paths),
        rerun_of: None,
        hold_on_failure_minutes: request.hold_on_failure_minutes,
        run_group_id: None,
        shard: None,
        schedule_id: None,
        scheduled_for: None,
        schedule_note: None,
        selection: Selection {
            keyword: request.keyword,
            markers: request.markers,
        }
        .to_column(),
        token_id: caller.token_id,
    };
    let paths_exist =
        || paths_exist(tests_root, &request.paths).map_err(|why| ServiceError::field("paths", why));
    match environment_id {
        Some(id) => queue_on_environment(conn, id, max_queued, new, paths_exist, start_here),
        None => insert(conn, new, paths_exist).map(|run| Created { run, claim: None }),
    }
}

/// Queues a run on one environment and starts it there if nothing is
/// ahead of it, in one round trip besides the transaction's own (see
/// `db::leases::queue_on`).
fn queue_on_environment(
    conn: &mut PgConnection,
    environment_id: i32,
    max_queued: i64,
    new: NewRunRow,
    paths_exist: impl FnOnce() -> Result<(), ServiceError>,
    start_here: Option<Claimer<'_>>,
) -> Result<Created, ServiceError> {
    db::runs::in_catalog_transaction(conn, false, |conn| {
        paths_exist()?;
        match db::leases::queue_on(conn, environment_id, max_queued, &new, start_here)? {
            Queued::TooMany(queued) => Err(too_many_queued(queued)),
            Queued::NoEnvironment => Err(no_such_environment(environment_id)),
            Queued::Waiting(row) => Ok(Created {
                run: db::runs::with_queue_position(conn, *row)?,
                claim: None,
            }),
            // Answered as it was asked for: queued, first in its queue
            // (nothing was ahead of it), and started in the same commit.
            Queued::Started(claim) => Ok(Created {
                run: RunRow {
                    status: RunStatus::Queued,
                    started_at: None,
                    ..claim.run.clone()
                }
                .into_run(Some(1)),
                claim: Some(*claim),
            }),
        }
    })
}

/// Refuses a run on a protected environment to whoever is neither an
/// admin nor on its allow-list; for a pool, if any of its environments is
/// such a one (the run could land there).
pub(super) fn may_run_on(
    conn: &mut PgConnection,
    caller: &Caller,
    environment_id: Option<i32>,
    label: Option<&str>,
) -> Result<(), ServiceError> {
    if caller.is_admin() {
        return Ok(());
    }
    let environments = match (environment_id, label) {
        (Some(id), _) => db::environments::find(conn, id)?.into_iter().collect(),
        (None, Some(label)) => db::environments::with_label(conn, label)?,
        (None, None) => Vec::new(),
    };
    let refused = environments.iter().find(|environment| {
        environment.protected && !environment.allowed_users.contains(&caller.username)
    });
    match refused {
        Some(environment) => Err(ServiceError::Forbidden(format!(
            "environment {} is protected: only admins and its allowed users may run tests there",
            environment.id
        ))),
        None => Ok(()),
    }
}

/// Refuses a new run when `max_queued` runs wait already: a flood of runs
/// is turned away rather than queued for days.
pub(super) fn room_in_the_queues(
    conn: &mut PgConnection,
    max_queued: i64,
) -> Result<(), ServiceError> {
    let queued = db::runs::queued_count(conn)?;
    if queued >= max_queued {
        return Err(too_many_queued(queued));
    }
    Ok(())
}

fn too_many_queued(queued: i64) -> ServiceError {
    ServiceError::TooMany(format!(
        "{queued} runs are queued already, the most this service takes (MAX_QUEUED_RUNS); \
         wait for some to start or cancel some"
    ))
}

fn no_such_environment(id: i32) -> ServiceError {
    ServiceError::field("environment_id", format!("environment {id} does not exist"))
}

/// Inserts a queued run under the catalog lock, once `paths_exist` agrees
/// and its environment exists (whose row stays locked for the insert, so
/// that runs of one environment commit in id order) or, for a pool, some
/// environment has its label (the pool's lock keeps its queue in order).
pub(super) fn insert(
    conn: &mut PgConnection,
    new: NewRunRow,
    paths_exist: impl FnOnce() -> Result<(), ServiceError>,
) -> Result<Run, ServiceError> {
    db::runs::in_catalog_transaction(conn, false, |conn| {
        paths_exist()?;
        lock_target(conn, new.environment_id, new.environment_label.as_deref())?;
        let row = db::runs::insert(conn, &new)?;
        Ok::<_, ServiceError>(db::runs::with_queue_position(conn, row)?)
    })
}

/// A run just queued, and the claim on it when it started at once.
pub struct Created {
    /// As created: queued (the claim, if any, came in the same commit).
    pub run: Run,
    pub claim: Option<Claim>,
}

/// Takes the lock that keeps a queue in id order while runs are inserted:
/// the environment's row (answered), or the pool's lock. Refuses an
/// environment that does not exist, and a label no environment has.
pub(super) fn lock_target(
    conn: &mut PgConnection,
    environment_id: Option<i32>,
    label: Option<&str>,
) -> Result<Option<EnvironmentRow>, ServiceError> {
    match (environment_id, label) {
        (Some(id), _) => {
            let Some(environment) = db::environments::lock_row(conn, id)? else {
                return Err(no_such_environment(id));
            };
            Ok(Some(environment))
        }
        (None, Some(label)) => {
            db::runs::lock_pool(conn, label)?;
            if db::environments::with_label(conn, label)?.is_empty() {
                return Err(ServiceError::field(
                    "environment_label",
                    format!("no environment has the label {label:?}; add it to some first"),
                ));
            }
            Ok(None)
        }
        (None, None) => Err(ServiceError::field("environment_id", "is required")),
    }
}

fn find(conn: &mut PgConnection, id: i64) -> Result<RunRow, ServiceError> {
    db::runs::find(conn, id)?.ok_or_else(|| missing(format_args!("run {id}")))
}

pub fn get(conn: &mut PgConnection, id: i64) -> Result<Run, ServiceError> {
    let run = db::runs::get(conn, id)?.ok_or_else(|| missing(format_args!("run {id}")))?;
    let mut runs = [run];
    explain_queued(conn, &mut runs)?;
    let [run] = runs;
    Ok(run)
}

/// Runs as the API shows them, with their places in their queues and why
/// they wait.
pub fn get_many(conn: &mut PgConnection, rows: Vec<RunRow>) -> Result<Vec<Run>, ServiceError> {
    let queued: Vec<i64> = rows
        .iter()
        .filter(|row| row.status == RunStatus::Queued)
        .map(|row| row.id)
        .collect();
    let positions = db::runs::queue_positions(conn, &queued)?;
    let mut runs: Vec<Run> = rows
        .into_iter()
        .map(|row| {
            let position = positions.get(&row.id).copied();
            row.into_run(position)
        })
        .collect();
    explain_queued(conn, &mut runs)?;
    Ok(runs)
}

/// A page of runs, newest first, and how many match in all.
pub fn list(
    conn: &mut PgConnection,
    query: &RunListQuery,
) -> Result<(Vec<Run>, i64), ServiceError> {
    let (page, per_page) = query.page_and_size().map_err(ServiceError::BadRequest)?;
    let (mut runs, total) = db::runs::list(conn, query, page, per_page)?;
    explain_queued(conn, &mut runs)?;
    Ok((runs, total))
}

/// Tells each queued run when it should start, and why it waits when it
/// is not for runs ahead of it: its environment is in maintenance, held
/// for someone else or served by no running instance; its pool has no
/// environment it can start on.
fn explain_queued(conn: &mut PgConnection, runs: &mut [Run]) -> Result<(), ServiceError> {
    if !runs.iter().any(|r| r.status == RunStatus::Queued) {
        return Ok(());
    }
    super::estimates::fill_runs(conn, runs)?;
    let now = db::reservations::now(conn)?;
    let served = db::instance::Served::now(conn)?;
    let mut why: HashMap<RunTarget, Option<WhyWaiting>> = HashMap::new();
    for run in runs.iter_mut().filter(|r| r.status == RunStatus::Queued) {
        let target = match (run.environment_id, &run.environment_label) {
            (Some(id), _) => RunTarget::Environment(id),
            (None, Some(label)) => RunTarget::Pool(label.clone()),
            (None, None) => continue,
        };
        let reason = match why.entry(target) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => {
                let reason = why_waiting(conn, slot.key(), now, &served)?;
                slot.insert(reason)
            }
        };
        if let Some(reason) = reason {
            // The holder's own runs start during their hold.
            if reason.holder.as_deref() != Some(run.username.as_str()) {
                run.status_reason = Some(format!("waiting: {}", reason.text));
            }
        }
    }
    Ok(())
}

/// Why runs for a target wait besides the runs ahead of them, and whose
/// runs are exempt (a holder's own).
struct WhyWaiting {
    text: String,
    holder: Option<String>,
}

impl WhyWaiting {
    fn for_all(text: String) -> Option<WhyWaiting> {
        Some(WhyWaiting { text, holder: None })
    }
}

fn why_waiting(
    conn: &mut PgConnection,
    target: &RunTarget,
    now: DateTime<Utc>,
    served: &db::instance::Served,
) -> Result<Option<WhyWaiting>, ServiceError> {
    let environment_id = match target {
        RunTarget::Environment(id) => *id,
        RunTarget::Pool(label) => return why_pool_waits(conn, label, now, served),
    };
    let Some(environment) = db::environments::find(conn, environment_id)? else {
        return Ok(None);
    };
    if let Some(maintenance) = environment.maintenance(now) {
        return Ok(WhyWaiting::for_all(format!(
            "environment {environment_id} is in maintenance: {}",
            maintenance.reason
        )));
    }
    if !served.serves(&environment.labels) {
        return Ok(WhyWaiting::for_all(format!(
            "no running instance serves environment {environment_id} ({}; see RUNNER_LABELS)",
            labels_in_words(&environment.labels)
        )));
    }
    Ok(db::reservations::active(conn, environment_id)?.map(|hold| {
        let until = hold
            .expires_at
            .map(|at| format!(" until {}", at.to_rfc3339()))
            .unwrap_or_default();
        WhyWaiting {
            text: format!(
                "environment {environment_id} is held by {}{until}",
                hold.owner
            ),
            holder: Some(hold.owner),
        }
    }))
}

/// Why a pool's runs cannot start at all, if they cannot: no environment
/// has the label, no running instance serves one, or all are in
/// maintenance.
fn why_pool_waits(
    conn: &mut PgConnection,
    label: &str,
    now: DateTime<Utc>,
    served: &db::instance::Served,
) -> Result<Option<WhyWaiting>, ServiceError> {
    let pool = db::environments::with_label(conn, label)?;
    if pool.is_empty() {
        return Ok(WhyWaiting::for_all(format!(
            "no environment has the label {label} any more"
        )));
    }
    let reachable: Vec<_> = pool.iter().filter(|e| served.serves(&e.labels)).collect();
    if reachable.is_empty() {
        return Ok(WhyWaiting::for_all(format!(
            "no running instance serves the environments labelled {label} (see RUNNER_LABELS)"
        )));
    }
    if reachable.iter().all(|e| e.maintenance(now).is_some()) {
        return Ok(WhyWaiting::for_all(format!(
            "every environment labelled {label} that a running instance serves is in maintenance"
        )));
    }
    Ok(None)
}

fn labels_in_words(labels: &[String]) -> String {
    match labels {
        [] => "it has no labels".into(),
        [one] => format!("its label: {one}"),
        many => format!("its labels: {}", many.join(", ")),
    }
}

pub fn log(conn: &mut PgConnection, id: i64, offset: i64) -> Result<LogChunk, ServiceError> {
    let run = find(conn, id)?;
    Ok(db::logs::read_from(conn, &run, offset)?)
}

pub fn log_text(conn: &mut PgConnection, id: i64) -> Result<String, ServiceError> {
    find(conn, id)?;
    Ok(db::logs::read_all(conn, id)?)
}

pub fn cases(conn: &mut PgConnection, id: i64) -> Result<Vec<CaseResult>, ServiceError> {
    find(conn, id)?;
    Ok(db::runs::cases(conn, id)?)
}

/// Pins (`true`) or unpins a run; the run as it is now.
pub fn pin(conn: &mut PgConnection, id: i64, pinned: bool) -> Result<Run, ServiceError> {
    if !db::runs::set_pinned(conn, id, pinned)? {
        return Err(missing(format_args!("run {id}")));
    }
    get(conn, id)
}

/// The files a run's tests left, by path.
pub fn artifacts(conn: &mut PgConnection, id: i64) -> Result<Vec<Artifact>, ServiceError> {
    find(conn, id)?;
    Ok(db::artifacts::list(conn, id)?)
}

/// One artifact of a run with its bytes. A path that could reach outside
/// the run's artifacts is refused as such; one the run lacks is not found.
pub fn artifact(
    conn: &mut PgConnection,
    id: i64,
    raw_path: &str,
) -> Result<(Artifact, Vec<u8>), ServiceError> {
    let path = shared::artifact::artifact_path(raw_path)
        .map_err(|why| ServiceError::BadRequest(format!("artifact path {raw_path:?} {why}")))?;
    let run = find(conn, id)?;
    if run.details_removed_at.is_some() {
        return Err(ServiceError::NotFound(format!(
            "run {id} has no artifact {path:?}: its details were removed by retention"
        )));
    }
    db::artifacts::read(conn, id, &path)?
        .ok_or_else(|| ServiceError::NotFound(format!("run {id} has no artifact {path:?}")))
}

/// The JUnit XML report of a finished run: pytest's own, or (when pytest
/// wrote none, as when it died) one written from the cases it reported.
pub fn junit_xml(conn: &mut PgConnection, id: i64) -> Result<String, ServiceError> {
    let run = find(conn, id)?;
    if let Some(xml) = db::reports::junit_xml(conn, id)? {
        return Ok(xml);
    }
    if !run.status.is_finished() {
        return Err(ServiceError::NotFound(format!(
            "run {id} has no JUnit report: it is not finished yet"
        )));
    }
    let cases = db::runs::cases(conn, id)?;
    if cases.is_empty() {
        return Err(ServiceError::NotFound(format!(
            "run {id} has no JUnit report: pytest reported no test"
        )));
    }
    Ok(crate::junit::export("pytest", &cases))
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// A queued run, now cancelled.
    AtOnce,
    /// A running run, whose holder will stop it.
    Requested,
}

pub fn cancel(
    conn: &mut PgConnection,
    id: i64,
    caller: &Caller,
) -> Result<Cancelled, ServiceError> {
    conn.transaction(|conn| {
        let run = db::runs::lock(conn, id)?.ok_or_else(|| missing(format_args!("run {id}")))?;
        if !caller.may_act_for(&run.username) {
            return Err(ServiceError::Forbidden(format!(
                "run {id} is {}'s; only its user or an admin may cancel it",
                run.username
            )));
        }
        match run.status {
            RunStatus::Queued => {
                db::runs::cancel_queued(conn, id)?;
                Ok(Cancelled::AtOnce)
            }
            RunStatus::Running => {
                db::runs::request_cancel(conn, id)?;
                Ok(Cancelled::Requested)
            }
            finished => Err(ServiceError::Conflict(format!(
                "run {id} is already finished ({finished}); only queued or running runs can be cancelled"
            ))),
        }
    })
}

/// Queues run `id` again: same user, environment, paths and selection
/// (`keyword`, `markers`), or (with
/// `failed_only`) only its failed and errored tests.
pub fn rerun(
    conn: &mut PgConnection,
    id: i64,
    failed_only: bool,
    max_queued: i64,
    caller: &Caller,
) -> Result<Run, ServiceError> {
    let original = find(conn, id)?;
    if !caller.may_act_for(&original.username) {
        return Err(ServiceError::Forbidden(format!(
            "run {id} is {}'s; only its user or an admin may run it again",
            original.username
        )));
    }
    room_in_the_queues(conn, max_queued)?;
    may_run_on(
        conn,
        caller,
        original.environment_id,
        original.environment_label.as_deref(),
    )?;
    let paths = if failed_only {
        let failed = db::runs::failed_nodeids(conn, id)?;
        if failed.is_empty() {
            return Err(ServiceError::field(
                "failed_only",
                format!("run {id} has no failed or errored tests to re-run"),
            ));
        }
        if failed.len() > MAX_RERUN_TESTS {
            return Err(ServiceError::field(
                "failed_only",
                format!(
                    "run {id} has {} failed or errored tests, more than the {MAX_RERUN_TESTS} a re-run of failures takes; re-run the whole run",
                    failed.len()
                ),
            ));
        }
        failed
    } else {
        original.paths()
    };
    // A pool's run goes back to its pool, wherever it ran.
    let environment_id = match original.environment_label {
        Some(_) => None,
        None => original.environment_id,
    };
    insert(
        conn,
        NewRunRow {
            username: original.username,
            environment_id,
            environment_label: original.environment_label,
            paths: Value::from(paths),
            rerun_of: Some(id),
            hold_on_failure_minutes: original.hold_on_failure_minutes,
            run_group_id: None,
            shard: None,
            schedule_id: None,
            scheduled_for: None,
            schedule_note: None,
            // The same selection: a failed-only re-run names its tests,
            // which the expressions select again or not, as before.
            selection: original.selection,
            token_id: caller.token_id,
        },
        // Paths of a run that ran: one whose file is gone since ends as an
        // error naming it.
        || Ok(()),
    )
}
