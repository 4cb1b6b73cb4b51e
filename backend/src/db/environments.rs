//! Queries about environments and how busy they are.

use diesel::prelude::*;
use shared::{Environment, RunStatus};
use std::collections::{BTreeMap, HashMap};

use super::models::{EnvironmentRow, Occupancy};
use super::schema::{environment_locks, environments, reservations, test_runs};

/// New values of an environment's settings; `None` keeps the current one.
#[derive(Debug, Default)]
pub struct EnvironmentChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub variables: Option<BTreeMap<String, String>>,
    pub run_timeout_secs: Option<Option<i32>>,
    pub labels: Option<Vec<String>>,
    pub protected: Option<bool>,
    pub allowed_users: Option<Vec<String>>,
}

impl EnvironmentChanges {
    /// Which settings change, in words for the audit log (values of
    /// variables are left out: they may be secrets).
    pub fn describe(&self) -> String {
        let mut changed: Vec<String> = Vec::new();
        let mut name = |set: bool, what: &str| {
            if set {
                changed.push(what.to_string());
            }
        };
        name(self.name.is_some(), "name");
        name(self.description.is_some(), "description");
        name(self.variables.is_some(), "variables");
        name(self.run_timeout_secs.is_some(), "run_timeout_secs");
        name(self.labels.is_some(), "labels");
        if let Some(protected) = self.protected {
            changed.push(format!("protected={protected}"));
        }
        if let Some(users) = &self.allowed_users {
            changed.push(format!("allowed_users={}", users.join(",")));
        }
        changed.join(" ")
    }
}

pub fn find(conn: &mut PgConnection, id: i32) -> QueryResult<Option<EnvironmentRow>> {
    environments::table
        .find(id)
        .select(EnvironmentRow::as_select())
        .first(conn)
        .optional()
}

/// The environments with `label`, by id.
pub fn with_label(conn: &mut PgConnection, label: &str) -> QueryResult<Vec<EnvironmentRow>> {
    environments::table
        .filter(environments::labels.contains(vec![label.to_string()]))
        .select(EnvironmentRow::as_select())
        .order(environments::id)
        .load(conn)
}

pub fn find_many(conn: &mut PgConnection, ids: &[i32]) -> QueryResult<Vec<EnvironmentRow>> {
    environments::table
        .filter(environments::id.eq_any(ids))
        .select(EnvironmentRow::as_select())
        .load(conn)
}

/// Whether the environment exists, keeping its row locked until the
/// transaction ends (against a concurrent delete).
pub fn lock(conn: &mut PgConnection, id: i32) -> QueryResult<bool> {
    lock_row(conn, id).map(|found| found.is_some())
}

/// The environment's row, kept locked as [`lock`] does.
pub fn lock_row(conn: &mut PgConnection, id: i32) -> QueryResult<Option<EnvironmentRow>> {
    environments::table
        .find(id)
        .select(EnvironmentRow::as_select())
        .for_no_key_update()
        .first(conn)
        .optional()
}

pub fn list(conn: &mut PgConnection) -> QueryResult<Vec<Environment>> {
    let now = super::reservations::now(conn)?;
    let rows: Vec<EnvironmentRow> = environments::table
        .select(EnvironmentRow::as_select())
        .order(environments::id)
        .load(conn)?;
    let holders: HashMap<i32, i64> = environment_locks::table
        .select((environment_locks::environment_id, environment_locks::run_id))
        .load::<(i32, i64)>(conn)?
        .into_iter()
        .collect();
    let queued: HashMap<i32, i64> = test_runs::table
        .filter(test_runs::status.eq(RunStatus::Queued))
        .filter(test_runs::environment_id.is_not_null())
        .group_by(test_runs::environment_id)
        .select((test_runs::environment_id, diesel::dsl::count_star()))
        .load::<(Option<i32>, i64)>(conn)?
        .into_iter()
        .filter_map(|(id, count)| Some((id?, count)))
        .collect();
    let mut holds = super::reservations::active_by_environment(conn)?;
    let waiting = super::reservations::waiting_by_environment(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.id;
            let occupancy = Occupancy {
                current_run_id: holders.get(&id).copied(),
                queued: queued.get(&id).copied().unwrap_or(0),
                hold: holds.remove(&id),
                reservations_waiting: waiting.get(&id).copied().unwrap_or(0),
            };
            row.into_environment(occupancy, now)
        })
        .collect())
}

pub fn get(conn: &mut PgConnection, id: i32) -> QueryResult<Option<Environment>> {
    let Some(row) = find(conn, id)? else {
        return Ok(None);
    };
    let now = super::reservations::now(conn)?;
    let current_run_id: Option<i64> = environment_locks::table
        .find(id)
        .select(environment_locks::run_id)
        .first(conn)
        .optional()?;
    let queued: i64 = test_runs::table
        .filter(test_runs::status.eq(RunStatus::Queued))
        .filter(test_runs::environment_id.eq(id))
        .count()
        .get_result(conn)?;
    let occupancy = Occupancy {
        current_run_id,
        queued,
        hold: super::reservations::active(conn, id)?,
        reservations_waiting: super::reservations::waiting_by_environment(conn)?
            .get(&id)
            .copied()
            .unwrap_or(0),
    };
    Ok(Some(row.into_environment(occupancy, now)))
}

/// Takes the environment out of rotation; false if there is no such one.
pub fn start_maintenance(
    conn: &mut PgConnection,
    id: i32,
    reason: &str,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> QueryResult<bool> {
    let updated = diesel::update(environments::table.find(id))
        .set((
            environments::maintenance_reason.eq(Some(reason)),
            environments::maintenance_since.eq(Some(super::reservations::now(conn)?)),
            environments::maintenance_until.eq(until),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Puts the environment back in rotation; false if there is no such one.
pub fn end_maintenance(conn: &mut PgConnection, id: i32) -> QueryResult<bool> {
    let updated = diesel::update(environments::table.find(id))
        .set((
            environments::maintenance_reason.eq(None::<String>),
            environments::maintenance_since.eq(None::<chrono::DateTime<chrono::Utc>>),
            environments::maintenance_until.eq(None::<chrono::DateTime<chrono::Utc>>),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Ends every maintenance whose time is up; answers how many.
pub fn end_expired_maintenance(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE environments SET maintenance_reason = NULL, maintenance_since = NULL,                 maintenance_until = NULL          WHERE maintenance_reason IS NOT NULL AND maintenance_until <= now()",
    )
    .execute(conn)
}

/// Inserts an environment with the given settings (those left out take
/// their defaults); false if the id is taken.
pub fn insert(
    conn: &mut PgConnection,
    id: i32,
    settings: &EnvironmentChanges,
) -> QueryResult<bool> {
    let variables = serde_json::to_value(settings.variables.clone().unwrap_or_default())
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let inserted = diesel::insert_into(environments::table)
        .values((
            environments::id.eq(id),
            environments::name.eq(settings.name.as_deref().unwrap_or_default()),
            environments::description.eq(settings.description.as_deref().unwrap_or_default()),
            environments::variables.eq(variables),
            environments::run_timeout_secs.eq(settings.run_timeout_secs.flatten()),
            environments::labels.eq(settings.labels.clone().unwrap_or_default()),
            environments::protected.eq(settings.protected.unwrap_or(false)),
            environments::allowed_users.eq(settings.allowed_users.clone().unwrap_or_default()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(inserted == 1)
}

/// Applies the changes; false if there is no such environment.
pub fn update(conn: &mut PgConnection, id: i32, changes: EnvironmentChanges) -> QueryResult<bool> {
    conn.transaction(|conn| {
        let current: Option<EnvironmentRow> = environments::table
            .find(id)
            .select(EnvironmentRow::as_select())
            .for_update()
            .first(conn)
            .optional()?;
        let Some(current) = current else {
            return Ok(false);
        };
        let variables = match changes.variables {
            Some(variables) => serde_json::to_value(variables)
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?,
            None => current.variables,
        };
        diesel::update(environments::table.find(id))
            .set((
                environments::name.eq(changes.name.unwrap_or(current.name)),
                environments::description.eq(changes.description.unwrap_or(current.description)),
                environments::variables.eq(variables),
                environments::run_timeout_secs
                    .eq(changes.run_timeout_secs.unwrap_or(current.run_timeout_secs)),
                environments::labels.eq(changes.labels.unwrap_or(current.labels)),
                environments::protected.eq(changes.protected.unwrap_or(current.protected)),
                environments::allowed_users
                    .eq(changes.allowed_users.unwrap_or(current.allowed_users)),
                environments::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

/// Whether the environment holds a lease, has runs queued or running, or
/// reservations waiting or holding it.
pub fn in_use(conn: &mut PgConnection, id: i32) -> QueryResult<bool> {
    let busy: i64 = environment_locks::table
        .filter(environment_locks::environment_id.eq(id))
        .count()
        .get_result(conn)?;
    let waiting: i64 = test_runs::table
        .filter(test_runs::environment_id.eq(id))
        .filter(test_runs::status.eq_any([RunStatus::Queued, RunStatus::Running]))
        .count()
        .get_result(conn)?;
    let reserved: i64 = reservations::table
        .filter(reservations::environment_id.eq(id))
        .filter(reservations::state.eq_any(["waiting", "active"]))
        .count()
        .get_result(conn)?;
    Ok(busy > 0 || waiting > 0 || reserved > 0)
}

pub fn delete(conn: &mut PgConnection, id: i32) -> QueryResult<usize> {
    diesel::delete(environments::table.find(id)).execute(conn)
}
