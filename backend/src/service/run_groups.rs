//! Run groups: one suite split into shards over a pool, balanced by how
//! long its tests took lately; one run per shard, one result for all.

use diesel::prelude::*;
use serde_json::Value;
use shared::run_group::split_by_duration;
use shared::validate::{Fields, TestPath};
use shared::{NewRunGroup, RunGroup, RunStatus};
use std::collections::HashSet;

use super::{missing, ServiceError};
use crate::catalog::{Entry, TestsRoot};
use crate::db;
use crate::db::models::NewRunRow;
use crate::db::run_groups::{NewRunGroupRow, RunGroupRow};

/// A test file nobody knows anything about is taken to last this long.
const UNKNOWN_UNIT_MS: u64 = 1_000;

/// A group's fields, checked, with its paths made into units: the test
/// files under its directories, its files and its node ids.
pub struct GroupRequest {
    username: String,
    label: String,
    shards: i32,
    paths: Vec<TestPath>,
    units: Vec<String>,
    hold_on_failure_minutes: Option<i32>,
}

/// Checks every field, and that the paths name test files or directories
/// of the catalog, and lists the units they hold. Reads the disk, not the
/// database: call it before taking a connection.
pub fn check(tests_root: &TestsRoot, new: &NewRunGroup) -> Result<GroupRequest, ServiceError> {
    let mut fields = Fields::default();
    let checked = new.check(&mut fields);
    let mut units = Vec::new();
    if let Some(paths) = &checked.paths {
        match units_of(tests_root, paths) {
            Ok(found) if found.is_empty() => fields.add("paths", "hold no test files"),
            Ok(found) => units = found,
            Err(why) => fields.add("paths", why),
        }
    }
    match (
        checked.username,
        checked.environment_label,
        checked.shards,
        checked.paths,
        checked.hold_on_failure_minutes,
    ) {
        (Some(username), Some(label), Some(shards), Some(paths), Some(hold_on_failure_minutes))
            if fields.is_empty() =>
        {
            Ok(GroupRequest {
                username,
                label,
                shards,
                paths,
                units,
                hold_on_failure_minutes,
            })
        }
        _ => Err(ServiceError::invalid(fields.into_inner())),
    }
}

/// The units of work of `paths`, each once, in the order given: a node id
/// stays one (unless its whole file is there too), a file is one, a
/// directory gives each test file under it.
fn units_of(tests_root: &TestsRoot, paths: &[TestPath]) -> Result<Vec<String>, String> {
    let mut catalog = None;
    let mut files = Vec::new();
    let mut node_ids = Vec::new();
    for path in paths {
        match tests_root.entry(path)? {
            Entry::File if path.node_suffix.is_some() => node_ids.push(path.as_arg()),
            Entry::File => files.push(path.location.trim_end_matches('/').to_string()),
            Entry::Directory => {
                let listed = match &catalog {
                    Some(listed) => listed,
                    None => catalog.insert(tests_root.list().map_err(|e| e.to_string())?),
                };
                let dir = path.location.trim_end_matches('/');
                files.extend(
                    listed
                        .files
                        .iter()
                        .filter(|file| {
                            file.path
                                .strip_prefix(dir)
                                .is_some_and(|rest| rest.starts_with('/'))
                        })
                        .map(|file| file.path.clone()),
                );
            }
        }
    }
    let mut seen = HashSet::new();
    let mut units: Vec<String> = files
        .into_iter()
        .filter(|f| seen.insert(f.clone()))
        .collect();
    let whole_files: HashSet<String> = units.iter().cloned().collect();
    units.extend(node_ids.into_iter().filter(|id| {
        let file = id.split("::").next().unwrap_or(id);
        !whole_files.contains(file) && seen.insert(id.clone())
    }));
    Ok(units)
}

/// Queues the group: its units split into shards by their recent
/// durations, one run per shard for the pool, all in one transaction.
pub fn create(
    conn: &mut PgConnection,
    tests_root: &TestsRoot,
    max_queued: i64,
    request: GroupRequest,
    caller: &super::identity::Caller,
) -> Result<RunGroup, ServiceError> {
    super::runs::room_in_the_queues(conn, max_queued)?;
    let known = db::run_groups::recent_durations(conn, &request.units)?;
    // A unit without history weighs as much as a typical one.
    let mut typical: Vec<u64> = known.values().copied().collect();
    typical.sort_unstable();
    let unknown = typical
        .get(typical.len() / 2)
        .copied()
        .unwrap_or(UNKNOWN_UNIT_MS);
    let weighed: Vec<(String, u64)> = request
        .units
        .iter()
        .map(|unit| (unit.clone(), known.get(unit).copied().unwrap_or(unknown)))
        .collect();
    let shards = split_by_duration(&weighed, request.shards as usize);
    let paths: Vec<String> = request.paths.iter().map(TestPath::as_arg).collect();
    let group = NewRunGroupRow {
        username: request.username.clone(),
        environment_label: request.label.clone(),
        paths: Value::from(paths),
        shards_requested: request.shards,
    };
    let runs: Vec<NewRunRow> = shards
        .into_iter()
        .map(|units| NewRunRow {
            username: request.username.clone(),
            environment_id: None,
            environment_label: Some(request.label.clone()),
            paths: Value::from(units),
            rerun_of: None,
            hold_on_failure_minutes: request.hold_on_failure_minutes,
            run_group_id: None,
            shard: None,
            schedule_id: None,
            scheduled_for: None,
            schedule_note: None,
            selection: None,
            token_id: caller.token_id,
        })
        .collect();
    let id = db::runs::in_catalog_transaction(conn, false, |conn| {
        super::runs::paths_exist(tests_root, &request.paths)
            .map_err(|why| ServiceError::field("paths", why))?;
        super::runs::lock_target(conn, None, Some(&request.label))?;
        super::runs::may_run_on(conn, caller, None, Some(&request.label))?;
        let (row, _) = db::run_groups::insert(conn, &group, runs)?;
        Ok::<_, ServiceError>(row.id)
    })?;
    get(conn, id)
}

pub fn get(conn: &mut PgConnection, id: i64) -> Result<RunGroup, ServiceError> {
    let row =
        db::run_groups::find(conn, id)?.ok_or_else(|| missing(format_args!("run group {id}")))?;
    assemble(conn, row)
}

/// The newest groups, newest first.
pub fn list(conn: &mut PgConnection, limit: i64) -> Result<Vec<RunGroup>, ServiceError> {
    db::run_groups::list(conn, limit)?
        .into_iter()
        .map(|row| assemble(conn, row))
        .collect()
}

fn assemble(conn: &mut PgConnection, row: RunGroupRow) -> Result<RunGroup, ServiceError> {
    let latest = db::run_groups::latest_runs(conn, row.id)?;
    let ids: Vec<i64> = latest.iter().map(|run| run.id).collect();
    let mut runs = super::runs::get_many(conn, latest)?;
    runs.sort_by_key(|run| run.shard);
    let statuses: Vec<RunStatus> = runs.iter().map(|run| run.status).collect();
    let status = RunGroup::status_of(&statuses);
    let started_at = runs.iter().filter_map(|run| run.started_at).min();
    let finished_at = match status.is_finished() {
        true => runs.iter().filter_map(|run| run.finished_at).max(),
        false => None,
    };
    let duration_ms = match (started_at, finished_at) {
        (Some(start), Some(end)) => Some((end - start).num_milliseconds().max(0)),
        _ => None,
    };
    Ok(RunGroup {
        id: row.id,
        username: row.username,
        environment_label: row.environment_label,
        paths: serde_json::from_value(row.paths).unwrap_or_default(),
        shards_requested: row.shards_requested,
        created_at: row.created_at,
        runs: ids,
        status,
        summary: RunGroup::summary_of(runs.iter().map(|run| &run.summary)),
        started_at,
        finished_at,
        duration_ms,
        shard_runs: runs,
    })
}

/// Cancels every shard still queued or running: the queued at once, the
/// running by asking their holders. Answers the runs asked to stop.
pub fn cancel(
    conn: &mut PgConnection,
    id: i64,
    caller: &super::identity::Caller,
) -> Result<Vec<i64>, ServiceError> {
    let group =
        db::run_groups::find(conn, id)?.ok_or_else(|| missing(format_args!("run group {id}")))?;
    if !caller.may_act_for(&group.username) {
        return Err(ServiceError::Forbidden(format!(
            "run group {id} is {}'s; only its user or an admin may cancel it",
            group.username
        )));
    }
    let mut running = Vec::new();
    for run in db::run_groups::latest_runs(conn, id)? {
        if run.status.is_finished() {
            continue;
        }
        match super::runs::cancel(conn, run.id, caller) {
            Ok(super::runs::Cancelled::Requested) => running.push(run.id),
            Ok(super::runs::Cancelled::AtOnce) => {}
            // Finished meanwhile: nothing to cancel there.
            Err(ServiceError::Conflict(_)) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(running)
}
