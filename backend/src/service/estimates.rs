//! When queued things should start: each environment's queue walked in
//! order from now, each run taking as long as the last runs of the same
//! paths took (else the environment's recent runs, else anyone's), each
//! reservation its minutes; the run going and the hold holding first.
//! Rough by nature: a guide for people deciding whether to wait.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use shared::{Environment, Reservation, Run, RunStatus};
use std::collections::{BTreeSet, HashMap};

use crate::db;
use crate::db::estimates::QueueItem;

/// A run nobody knows anything about is taken to last this long.
const UNKNOWN_RUN_MS: f64 = 60_000.0;

/// The walk of some environments' queues.
#[derive(Debug, Default)]
pub struct Plan {
    pub run_starts: HashMap<i64, DateTime<Utc>>,
    /// A waiting reservation's start and end.
    pub reservation_times: HashMap<i64, (DateTime<Utc>, DateTime<Utc>)>,
    /// When everything there now is done; `None`: unknown (maintenance
    /// without an end).
    pub free_at: HashMap<i32, Option<DateTime<Utc>>>,
}

/// Walks the queues of `environments` and of the pools `pools` (with
/// every environment of theirs) together, in FIFO order: a pool's run goes
/// to the pool's environment that frees up first.
pub fn plan(conn: &mut PgConnection, environments: &[i32], pools: &[String]) -> QueryResult<Plan> {
    let mut plan = Plan::default();
    if environments.is_empty() && pools.is_empty() {
        return Ok(plan);
    }
    let now = db::reservations::now(conn)?;
    let mut members: HashMap<&str, Vec<i32>> = HashMap::new();
    let mut all: BTreeSet<i32> = environments.iter().copied().collect();
    let pool_rows: Vec<(String, Vec<i32>)> = pools
        .iter()
        .map(|label| {
            let ids = db::environments::with_label(conn, label)?
                .into_iter()
                .map(|row| row.id)
                .collect();
            Ok((label.clone(), ids))
        })
        .collect::<QueryResult<_>>()?;
    for (label, ids) in &pool_rows {
        all.extend(ids);
        members.insert(label, ids.clone());
    }
    let environments: Vec<i32> = all.into_iter().collect();
    let mut items = db::estimates::queues(conn, &environments)?;
    items.extend(db::estimates::pool_queues(conn, pools)?);
    let mut seen = std::collections::HashSet::new();
    let paths: Vec<serde_json::Value> = items
        .iter()
        .filter_map(|item| item.paths.clone())
        .filter(|p| seen.insert(p.to_string()))
        .collect();
    let by_paths: HashMap<&serde_json::Value, f64> = paths
        .iter()
        .zip(db::estimates::typical_by_paths(conn, &paths)?)
        .filter_map(|(paths, ms)| Some((paths, ms?)))
        .collect();
    let by_environment = db::estimates::typical_by_environment(conn, &environments)?;
    let offline: HashMap<i32, Option<DateTime<Utc>>> =
        db::environments::find_many(conn, &environments)?
            .into_iter()
            .filter_map(|row| Some((row.id, row.maintenance(now)?.until)))
            .collect();
    let typical = |item: &QueueItem| -> Duration {
        let ms = item
            .paths
            .as_ref()
            .and_then(|p| by_paths.get(p))
            .or_else(|| by_environment.get(&item.environment_id))
            .or_else(|| by_environment.get(&0))
            .copied()
            .unwrap_or(UNKNOWN_RUN_MS);
        Duration::milliseconds(ms as i64)
    };
    // Each environment's cursor: when it is free of what is on it now.
    // `None`: out of rotation with no end, so nothing there can be told.
    let mut cursors: HashMap<i32, Option<DateTime<Utc>>> = environments
        .iter()
        .map(|id| {
            let start = match offline.get(id) {
                Some(None) => None,
                Some(Some(until)) => Some((*until).max(now)),
                None => Some(now),
            };
            (*id, start)
        })
        .collect();
    for item in items
        .iter()
        .filter(|i| matches!(i.kind.as_str(), "running" | "hold"))
    {
        if let Some(Some(cursor)) = cursors.get_mut(&item.environment_id) {
            *cursor = match item.kind.as_str() {
                "running" => (*cursor).max(item.at.unwrap_or(now) + typical(item)),
                _ => (*cursor).max(item.at.unwrap_or(now)),
            };
        }
    }
    let mut waiting: Vec<&QueueItem> = items
        .iter()
        .filter(|i| !matches!(i.kind.as_str(), "running" | "hold"))
        .collect();
    waiting.sort_by_key(|item| item.position);
    for item in waiting {
        let environment_id = match (item.kind.as_str(), &item.label) {
            ("pool", Some(label)) => {
                let earliest = members
                    .get(label.as_str())
                    .into_iter()
                    .flatten()
                    .filter_map(|id| Some((cursors.get(id).copied().flatten()?, *id)))
                    .min();
                match earliest {
                    Some((_, id)) => id,
                    None => continue,
                }
            }
            _ => item.environment_id,
        };
        let Some(Some(cursor)) = cursors.get_mut(&environment_id) else {
            continue;
        };
        match item.kind.as_str() {
            "reservation" => {
                let end = *cursor + Duration::minutes(i64::from(item.minutes.unwrap_or(0)));
                plan.reservation_times.insert(item.id, (*cursor, end));
                *cursor = end;
            }
            _ => {
                plan.run_starts.insert(item.id, *cursor);
                *cursor += typical(item);
            }
        }
    }
    plan.free_at = cursors;
    Ok(plan)
}

/// Gives each queued run of `runs` its estimated start.
pub fn fill_runs(conn: &mut PgConnection, runs: &mut [Run]) -> QueryResult<()> {
    let queued = || runs.iter().filter(|r| r.status == RunStatus::Queued);
    let environments: Vec<i32> = queued()
        .filter_map(|r| r.environment_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let pools: Vec<String> = queued()
        .filter(|r| r.environment_id.is_none())
        .filter_map(|r| r.environment_label.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let plan = plan(conn, &environments, &pools)?;
    for run in runs.iter_mut().filter(|r| r.status == RunStatus::Queued) {
        run.estimated_start_at = plan.run_starts.get(&run.id).copied();
    }
    Ok(())
}

/// Gives each environment the time it should be free.
pub fn fill_environments(
    conn: &mut PgConnection,
    environments: &mut [Environment],
) -> QueryResult<()> {
    let ids: Vec<i32> = environments.iter().map(|e| e.id).collect();
    let pools = db::estimates::busy_pools(conn)?;
    let plan = plan(conn, &ids, &pools)?;
    for environment in environments.iter_mut() {
        environment.estimated_free_at = plan.free_at.get(&environment.id).copied().flatten();
    }
    Ok(())
}

/// Gives a waiting reservation its estimated start and end.
pub fn fill_reservation(
    conn: &mut PgConnection,
    environment_id: i32,
    reservation: &mut Reservation,
) -> QueryResult<()> {
    if reservation.state != shared::ReservationState::Waiting {
        return Ok(());
    }
    let plan = plan(conn, &[environment_id], &[])?;
    if let Some((starts, ends)) = plan.reservation_times.get(&reservation.id) {
        reservation.starts_at = Some(*starts);
        reservation.expires_at = Some(*ends);
    }
    Ok(())
}
