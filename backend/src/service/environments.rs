//! Environments: the shared resources runs queue for.

use diesel::prelude::*;
use shared::validate::{self, Fields};
use shared::{Environment, NewEnvironment, UpdateEnvironment};

use super::{missing, ServiceError};
use crate::db;
use crate::db::environments::EnvironmentChanges;

/// An environment id from a path: ids outside 1 to 100 can never exist.
pub fn id_from_path(id: i64) -> Result<i32, ServiceError> {
    validate::environment_id(id).map_err(|_| missing(format_args!("environment {id}")))
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<Environment>, ServiceError> {
    let mut environments = db::environments::list(conn)?;
    super::estimates::fill_environments(conn, &mut environments)?;
    Ok(environments)
}

pub fn get(conn: &mut PgConnection, id: i32) -> Result<Environment, ServiceError> {
    let environment = db::environments::get(conn, id)?
        .ok_or_else(|| missing(format_args!("environment {id}")))?;
    let mut environments = [environment];
    super::estimates::fill_environments(conn, &mut environments)?;
    let [environment] = environments;
    Ok(environment)
}

/// Checks a new environment's fields, naming every bad one.
pub fn check_new(new: &NewEnvironment) -> Result<(i32, EnvironmentChanges), ServiceError> {
    let mut fields = Fields::default();
    match new.check(&mut fields) {
        Some((id, settings)) if fields.is_empty() => Ok((
            id,
            EnvironmentChanges {
                name: settings.name,
                description: settings.description,
                variables: settings.variables,
                run_timeout_secs: settings.run_timeout_secs,
                labels: settings.labels,
                protected: settings.protected,
                allowed_users: settings.allowed_users,
            },
        )),
        _ => Err(ServiceError::invalid(fields.into_inner())),
    }
}

pub fn create(
    conn: &mut PgConnection,
    id: i32,
    settings: EnvironmentChanges,
) -> Result<Environment, ServiceError> {
    let inserted = db::environments::insert(conn, id, &settings)?;
    if !inserted {
        return Err(ServiceError::Conflict(format!(
            "environment {id} already exists"
        )));
    }
    get(conn, id)
}

/// Checks an update's fields, naming every bad one.
pub fn check_update(
    id: i32,
    update: &UpdateEnvironment,
) -> Result<EnvironmentChanges, ServiceError> {
    let mut fields = Fields::default();
    let settings = update.check(id, &mut fields);
    if !fields.is_empty() {
        return Err(ServiceError::invalid(fields.into_inner()));
    }
    Ok(EnvironmentChanges {
        name: settings.name,
        description: settings.description,
        variables: settings.variables,
        run_timeout_secs: settings.run_timeout_secs,
        labels: settings.labels,
        protected: settings.protected,
        allowed_users: settings.allowed_users,
    })
}

pub fn update(
    conn: &mut PgConnection,
    id: i32,
    changes: EnvironmentChanges,
) -> Result<Environment, ServiceError> {
    if !db::environments::update(conn, id, changes)? {
        return Err(missing(format_args!("environment {id}")));
    }
    get(conn, id)
}

/// Deletes an idle environment with no queued runs. Its row lock makes a
/// concurrent run creation either land before (and block the delete) or
/// find the environment gone.
pub fn delete(conn: &mut PgConnection, id: i32) -> Result<(), ServiceError> {
    conn.transaction(|conn| {
        if !db::environments::lock(conn, id)? {
            return Err(missing(format_args!("environment {id}")));
        }
        if db::environments::in_use(conn, id)? {
            return Err(ServiceError::Conflict(format!(
                "environment {id} is busy or has queued runs; cancel them first"
            )));
        }
        db::environments::delete(conn, id)?;
        Ok(())
    })
}
