//! Runs: queue one, read them, cancel one, run one again.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use shared::validate::{Fields, TestPath};
use shared::{CaseResult, LogChunk, NewRun, Run, RunListQuery, RunStatus};
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::{missing, ServiceError};
use crate::catalog::TestsRoot;
use crate::db;
use crate::db::models::{NewRunRow, RunRow};

/// The most failed tests a "re-run failed" names one by one.
pub const MAX_RERUN_TESTS: usize = 10_000;

/// A run's fields, checked: who, where, what.
pub struct RunRequest {
    username: String,
    environment_id: i32,
    paths: Vec<TestPath>,
    hold_on_failure_minutes: Option<i32>,
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
        checked.environment_id,
        checked.paths,
        checked.hold_on_failure_minutes,
    ) {
        (Some(username), Some(environment_id), Some(paths), Some(hold_on_failure_minutes))
            if fields.is_empty() =>
        {
            Ok(RunRequest {
                username,
                environment_id,
                paths,
                hold_on_failure_minutes,
            })
        }
        _ => Err(ServiceError::invalid(fields.into_inner())),
    }
}

/// Whether every path names a test file or directory of the catalog; the
/// first that does not, and why.
fn paths_exist(tests_root: &TestsRoot, paths: &[TestPath]) -> Result<(), String> {
    paths
        .iter()
        .try_for_each(|path| tests_root.entry(path).map(|_| ()))
}

/// Queues a checked run. Its paths are checked again under the catalog
/// lock, so a file deleted since [`check`] is refused here rather than met
/// by the run.
pub fn create(
    conn: &mut PgConnection,
    tests_root: &TestsRoot,
    max_queued: i64,
    request: RunRequest,
) -> Result<Run, ServiceError> {
    room_in_the_queues(conn, max_queued)?;
    let paths: Vec<String> = request.paths.iter().map(TestPath::as_arg).collect();
    insert(
        conn,
        NewRunRow {
            username: request.username,
            environment_id: request.environment_id,
            paths: Value::from(paths),
            rerun_of: None,
            hold_on_failure_minutes: request.hold_on_failure_minutes,
        },
        || paths_exist(tests_root, &request.paths).map_err(|why| ServiceError::field("paths", why)),
    )
}

/// Refuses a new run when `max_queued` runs wait already: a flood of runs
/// is turned away rather than queued for days.
fn room_in_the_queues(conn: &mut PgConnection, max_queued: i64) -> Result<(), ServiceError> {
    let queued = db::runs::queued_count(conn)?;
    if queued >= max_queued {
        return Err(ServiceError::TooMany(format!(
            "{queued} runs are queued already, the most this service takes (MAX_QUEUED_RUNS); \
             wait for some to start or cancel some"
        )));
    }
    Ok(())
}

/// Inserts a queued run under the catalog lock, once `paths_exist` agrees
/// and its environment exists (whose row stays locked for the insert, so
/// that runs of one environment commit in id order).
fn insert(
    conn: &mut PgConnection,
    new: NewRunRow,
    paths_exist: impl FnOnce() -> Result<(), ServiceError>,
) -> Result<Run, ServiceError> {
    conn.transaction(|conn| {
        db::runs::lock_catalog(conn, false)?;
        paths_exist()?;
        if !db::environments::lock(conn, new.environment_id)? {
            return Err(ServiceError::field(
                "environment_id",
                format!("environment {} does not exist", new.environment_id),
            ));
        }
        let row = db::runs::insert(conn, &new)?;
        Ok(db::runs::with_queue_position(conn, row)?)
    })
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
/// is not for runs ahead of it: its environment is in maintenance, or
/// held for someone else.
fn explain_queued(conn: &mut PgConnection, runs: &mut [Run]) -> Result<(), ServiceError> {
    if !runs.iter().any(|r| r.status == RunStatus::Queued) {
        return Ok(());
    }
    super::estimates::fill_runs(conn, runs)?;
    let now = db::reservations::now(conn)?;
    let mut why: HashMap<i32, Option<WhyWaiting>> = HashMap::new();
    for run in runs.iter_mut().filter(|r| r.status == RunStatus::Queued) {
        let environment_id = run.environment_id;
        let reason = match why.entry(environment_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(why_waiting(conn, environment_id, now)?),
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

/// Why runs on an environment wait besides the runs ahead of them, and
/// whose runs are exempt (a holder's own).
struct WhyWaiting {
    text: String,
    holder: Option<String>,
}

fn why_waiting(
    conn: &mut PgConnection,
    environment_id: i32,
    now: DateTime<Utc>,
) -> Result<Option<WhyWaiting>, ServiceError> {
    if let Some(maintenance) =
        db::environments::find(conn, environment_id)?.and_then(|row| row.maintenance(now))
    {
        return Ok(Some(WhyWaiting {
            text: format!(
                "environment {environment_id} is in maintenance: {}",
                maintenance.reason
            ),
            holder: None,
        }));
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

pub fn cancel(conn: &mut PgConnection, id: i64) -> Result<Cancelled, ServiceError> {
    conn.transaction(|conn| {
        let run = db::runs::lock(conn, id)?.ok_or_else(|| missing(format_args!("run {id}")))?;
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

/// Queues run `id` again: same user, environment and paths, or (with
/// `failed_only`) only its failed and errored tests.
pub fn rerun(
    conn: &mut PgConnection,
    id: i64,
    failed_only: bool,
    max_queued: i64,
) -> Result<Run, ServiceError> {
    let original = find(conn, id)?;
    room_in_the_queues(conn, max_queued)?;
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
    insert(
        conn,
        NewRunRow {
            username: original.username,
            environment_id: original.environment_id,
            paths: Value::from(paths),
            rerun_of: Some(id),
            hold_on_failure_minutes: original.hold_on_failure_minutes,
        },
        // Paths of a run that ran: one whose file is gone since ends as an
        // error naming it.
        || Ok(()),
    )
}
