//! Queries about environments and how busy they are.

use diesel::prelude::*;
use shared::Environment;
use std::collections::{BTreeMap, HashMap};

use super::models::EnvironmentRow;
use super::schema::{environment_locks, environments, test_runs};
use crate::error::ApiError;

pub struct EnvironmentChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub variables: Option<BTreeMap<String, String>>,
    pub run_timeout_secs: Option<Option<i32>>,
}

pub fn find(conn: &mut PgConnection, id: i32) -> Result<EnvironmentRow, ApiError> {
    environments::table
        .find(id)
        .select(EnvironmentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound(format!("environment {id} does not exist")))
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<Environment>, ApiError> {
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
        .filter(test_runs::status.eq("queued"))
        .group_by(test_runs::environment_id)
        .select((test_runs::environment_id, diesel::dsl::count_star()))
        .load::<(i32, i64)>(conn)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.id;
            row.into_environment(
                holders.get(&id).copied(),
                queued.get(&id).copied().unwrap_or(0),
            )
        })
        .collect())
}

pub fn get(conn: &mut PgConnection, id: i32) -> Result<Environment, ApiError> {
    let row = find(conn, id)?;
    let holder: Option<i64> = environment_locks::table
        .find(id)
        .select(environment_locks::run_id)
        .first(conn)
        .optional()?;
    let queued: i64 = test_runs::table
        .filter(test_runs::status.eq("queued"))
        .filter(test_runs::environment_id.eq(id))
        .count()
        .get_result(conn)?;
    Ok(row.into_environment(holder, queued))
}

pub fn create(
    conn: &mut PgConnection,
    id: i32,
    name: &str,
    description: &str,
    variables: &BTreeMap<String, String>,
    run_timeout_secs: Option<i32>,
) -> Result<Environment, ApiError> {
    let inserted = diesel::insert_into(environments::table)
        .values((
            environments::id.eq(id),
            environments::name.eq(name),
            environments::description.eq(description),
            environments::variables
                .eq(serde_json::to_value(variables).map_err(ApiError::internal)?),
            environments::run_timeout_secs.eq(run_timeout_secs),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    if inserted == 0 {
        return Err(ApiError::Conflict(format!(
            "environment {id} already exists"
        )));
    }
    get(conn, id)
}

pub fn update(
    conn: &mut PgConnection,
    id: i32,
    changes: EnvironmentChanges,
) -> Result<Environment, ApiError> {
    conn.transaction(|conn| {
        let current: EnvironmentRow = environments::table
            .find(id)
            .select(EnvironmentRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::NotFound(format!("environment {id} does not exist")))?;
        let variables = match changes.variables {
            Some(variables) => serde_json::to_value(variables).map_err(ApiError::internal)?,
            None => current.variables,
        };
        diesel::update(environments::table.find(id))
            .set((
                environments::name.eq(changes.name.unwrap_or(current.name)),
                environments::description.eq(changes.description.unwrap_or(current.description)),
                environments::variables.eq(variables),
                environments::run_timeout_secs
                    .eq(changes.run_timeout_secs.unwrap_or(current.run_timeout_secs)),
                environments::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
        get(conn, id)
    })
}

/// Deletes an idle environment with no queued runs. The row lock makes a
/// concurrent run creation either land before (and block the delete) or
/// find the environment gone.
pub fn delete(conn: &mut PgConnection, id: i32) -> Result<(), ApiError> {
    conn.transaction(|conn| {
        environments::table
            .find(id)
            .select(environments::id)
            .for_update()
            .first::<i32>(conn)
            .optional()?
            .ok_or_else(|| ApiError::NotFound(format!("environment {id} does not exist")))?;
        let busy: i64 = environment_locks::table
            .filter(environment_locks::environment_id.eq(id))
            .count()
            .get_result(conn)?;
        let waiting: i64 = test_runs::table
            .filter(test_runs::environment_id.eq(id))
            .filter(test_runs::status.eq_any(["queued", "running"]))
            .count()
            .get_result(conn)?;
        if busy > 0 || waiting > 0 {
            return Err(ApiError::Conflict(format!(
                "environment {id} is busy or has queued runs; cancel them first"
            )));
        }
        diesel::delete(environments::table.find(id)).execute(conn)?;
        Ok(())
    })
}
