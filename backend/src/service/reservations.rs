//! Sharing environments: reservations (now, or as the next in line),
//! holds after a failed run, their extension and release, and maintenance.
//! Each change takes the environment's row first, as a claim does, so that
//! a run and a reservation never both start on one environment.

use diesel::prelude::*;
use shared::validate::Fields;
use shared::{Environment, NewMaintenance, NewReservation, Reservation, ReservationWhen};

use super::{missing, ServiceError};
use crate::db;
use crate::db::models::ReservationRow;

pub use super::identity::Caller;

fn answer(conn: &mut PgConnection, row: ReservationRow) -> Result<Reservation, ServiceError> {
    let now = db::reservations::now(conn)?;
    let position = match row.state(now) {
        shared::ReservationState::Waiting => Some(db::reservations::queue_position(conn, &row)?),
        _ => None,
    };
    let id = row.environment_id;
    let mut reservation = row.into_reservation(position, now);
    super::estimates::fill_reservation(conn, id, &mut reservation)?;
    Ok(reservation)
}

/// Reserves environment `environment_id` for `caller`: at once (409 while
/// it is busy, held, in maintenance or has a queue), or as the next in its
/// queue, between runs.
pub fn reserve(
    conn: &mut PgConnection,
    environment_id: i32,
    caller: &Caller,
    new: &NewReservation,
) -> Result<Reservation, ServiceError> {
    let mut fields = Fields::default();
    let Some(request) = new.check(&mut fields).filter(|_| fields.is_empty()) else {
        return Err(ServiceError::invalid(fields.into_inner()));
    };
    let row = conn.transaction(|conn| {
        if !db::environments::lock(conn, environment_id)? {
            return Err(missing(format_args!("environment {environment_id}")));
        }
        match request.when {
            ReservationWhen::Next => Ok(db::reservations::insert_waiting(
                conn,
                environment_id,
                &caller.username,
                &request.reason,
                request.minutes,
            )?),
            ReservationWhen::Now => {
                db::reservations::end_expired(conn, Some(environment_id))?;
                let environment = db::environments::get(conn, environment_id)?
                    .ok_or_else(|| missing(format_args!("environment {environment_id}")))?;
                if let Some(why) = not_free_now(&environment) {
                    return Err(ServiceError::Conflict(format!(
                        "environment {environment_id} {why}; reserve it as the next in line (\"when\": \"next\")"
                    )));
                }
                Ok(db::reservations::insert_active(
                    conn,
                    environment_id,
                    &caller.username,
                    &request.reason,
                    "reservation",
                    request.minutes,
                    None,
                )?)
            }
        }
    })?;
    tracing::info!(reservation_id = row.id, environment_id, owner = %row.owner, state = %row.state, "reservation made");
    answer(conn, row)
}

/// Why an environment cannot be reserved at once, if it cannot.
fn not_free_now(environment: &Environment) -> Option<String> {
    if let Some(maintenance) = &environment.maintenance {
        return Some(format!("is in maintenance ({})", maintenance.reason));
    }
    if let Some(run) = environment.current_run_id {
        return Some(format!("is busy with run {run}"));
    }
    if let Some(hold) = &environment.hold {
        return Some(format!(
            "is held by {} until {}",
            hold.owner,
            hold.until.to_rfc3339()
        ));
    }
    if environment.queued > 0 || environment.reservations_waiting > 0 {
        return Some("has a queue".to_string());
    }
    None
}

pub fn get(conn: &mut PgConnection, id: i64) -> Result<Reservation, ServiceError> {
    let row = db::reservations::find(conn, id)?
        .ok_or_else(|| missing(format_args!("reservation {id}")))?;
    answer(conn, row)
}

/// The environment's reservations: the one holding it, those waiting, and
/// the last that ended.
pub fn of_environment(
    conn: &mut PgConnection,
    environment_id: i32,
) -> Result<Vec<Reservation>, ServiceError> {
    if db::environments::find(conn, environment_id)?.is_none() {
        return Err(missing(format_args!("environment {environment_id}")));
    }
    db::reservations::of_environment(conn, environment_id)?
        .into_iter()
        .map(|row| answer(conn, row))
        .collect()
}

/// Locks a reservation the caller may change: their own, or anyone's for
/// an admin.
fn owned(
    conn: &mut PgConnection,
    id: i64,
    caller: &Caller,
) -> Result<ReservationRow, ServiceError> {
    let row = db::reservations::lock(conn, id)?
        .ok_or_else(|| missing(format_args!("reservation {id}")))?;
    if !caller.may_act_for(&row.owner) {
        return Err(ServiceError::Forbidden(format!(
            "reservation {id} is {}'s; only they or an admin may change it",
            row.owner
        )));
    }
    Ok(row)
}

/// Adds minutes to a reservation that has not ended.
pub fn extend(
    conn: &mut PgConnection,
    id: i64,
    minutes: i32,
    caller: &Caller,
) -> Result<Reservation, ServiceError> {
    let row = conn.transaction(|conn| {
        owned(conn, id, caller)?;
        if db::reservations::extend(conn, id, minutes)? == 0 {
            return Err(ServiceError::Conflict(format!(
                "reservation {id} has ended"
            )));
        }
        db::reservations::find(conn, id)?.ok_or_else(|| missing(format_args!("reservation {id}")))
    })?;
    let now = db::reservations::now(conn)?;
    if row.state(now) == shared::ReservationState::Ended {
        return Err(ServiceError::Conflict(format!(
            "reservation {id} has ended"
        )));
    }
    tracing::info!(reservation_id = id, minutes, by = %caller.username, "reservation extended");
    answer(conn, row)
}

/// Ends a reservation or hold before its time; the environment goes on
/// to whatever waits.
pub fn release(conn: &mut PgConnection, id: i64, caller: &Caller) -> Result<(), ServiceError> {
    conn.transaction(|conn| {
        let row = owned(conn, id, caller)?;
        let why = if row.owner == caller.username {
            "released".to_string()
        } else {
            format!("ended by {}", caller.username)
        };
        if db::reservations::end(conn, id, &why)? == 0 {
            return Err(ServiceError::Conflict(format!(
                "reservation {id} has ended already"
            )));
        }
        Ok(())
    })?;
    tracing::info!(reservation_id = id, by = %caller.username, "reservation ended");
    Ok(())
}

/// Takes an environment out of rotation: `draining` while its run goes,
/// then `offline`; queued runs wait, and see why.
pub fn start_maintenance(
    conn: &mut PgConnection,
    environment_id: i32,
    new: &NewMaintenance,
) -> Result<Environment, ServiceError> {
    let now = db::reservations::now(conn)?;
    let (reason, until) = new.check(now).map_err(ServiceError::invalid)?;
    conn.transaction(|conn| {
        if !db::environments::lock(conn, environment_id)? {
            return Err(missing(format_args!("environment {environment_id}")));
        }
        db::environments::start_maintenance(conn, environment_id, &reason, until)?;
        Ok(())
    })?;
    tracing::info!(environment_id, %reason, ?until, "maintenance started");
    super::environments::get(conn, environment_id)
}

/// Puts an environment back in rotation.
pub fn end_maintenance(
    conn: &mut PgConnection,
    environment_id: i32,
) -> Result<Environment, ServiceError> {
    conn.transaction(|conn| {
        if !db::environments::lock(conn, environment_id)? {
            return Err(missing(format_args!("environment {environment_id}")));
        }
        db::environments::end_maintenance(conn, environment_id)?;
        Ok(())
    })?;
    tracing::info!(environment_id, "maintenance ended");
    super::environments::get(conn, environment_id)
}
