//! Reservations and holds: a person's claim on an environment, waiting in
//! its queue between runs or holding it now. Every time-based rule reads
//! the database's clock, the one all instances share.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use std::collections::HashMap;

use super::models::ReservationRow;
use super::schema::reservations;

/// The database's clock.
pub fn now(conn: &mut PgConnection) -> QueryResult<DateTime<Utc>> {
    #[derive(QueryableByName)]
    struct Now {
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        now: DateTime<Utc>,
    }
    diesel::sql_query("SELECT now() AS now")
        .get_result::<Now>(conn)
        .map(|n| n.now)
}

/// Marks ended every active reservation (of one environment, or all) whose
/// time is up; answers their environments.
pub fn end_expired(conn: &mut PgConnection, environment_id: Option<i32>) -> QueryResult<Vec<i32>> {
    #[derive(QueryableByName)]
    struct Ended {
        #[diesel(sql_type = Integer)]
        environment_id: i32,
    }
    let ended: Vec<Ended> = diesel::sql_query(
        "UPDATE reservations SET state = 'ended', ended_at = expires_at, end_reason = 'expired' \
         WHERE state = 'active' AND expires_at <= now() AND ($1::int IS NULL OR environment_id = $1) \
         RETURNING environment_id",
    )
    .bind::<Nullable<Integer>, _>(environment_id)
    .load(conn)?;
    Ok(ended.into_iter().map(|e| e.environment_id).collect())
}

/// The reservation or hold holding the environment now, if any.
pub fn active(conn: &mut PgConnection, environment_id: i32) -> QueryResult<Option<ReservationRow>> {
    diesel::sql_query(
        "SELECT * FROM reservations \
         WHERE environment_id = $1 AND state = 'active' AND expires_at > now()",
    )
    .bind::<Integer, _>(environment_id)
    .get_result(conn)
    .optional()
}

/// Every environment's active reservation or hold.
pub fn active_by_environment(conn: &mut PgConnection) -> QueryResult<HashMap<i32, ReservationRow>> {
    let rows: Vec<ReservationRow> = diesel::sql_query(
        "SELECT * FROM reservations WHERE state = 'active' AND expires_at > now()",
    )
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.environment_id, r)).collect())
}

/// How many reservations wait in each environment's queue.
pub fn waiting_by_environment(conn: &mut PgConnection) -> QueryResult<HashMap<i32, i64>> {
    let counts: Vec<(i32, i64)> = reservations::table
        .filter(reservations::state.eq("waiting"))
        .group_by(reservations::environment_id)
        .select((reservations::environment_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(counts.into_iter().collect())
}

/// The first reservation waiting in the environment's queue.
pub fn first_waiting(
    conn: &mut PgConnection,
    environment_id: i32,
) -> QueryResult<Option<ReservationRow>> {
    reservations::table
        .filter(reservations::environment_id.eq(environment_id))
        .filter(reservations::state.eq("waiting"))
        .order(reservations::queue_order)
        .select(ReservationRow::as_select())
        .first(conn)
        .optional()
}

/// A new reservation or hold, holding its environment from now on. The
/// caller has made sure the environment is free.
pub fn insert_active(
    conn: &mut PgConnection,
    environment_id: i32,
    owner: &str,
    reason: &str,
    kind: &str,
    minutes: i32,
    run_id: Option<i64>,
) -> QueryResult<ReservationRow> {
    diesel::sql_query(
        "INSERT INTO reservations (environment_id, owner, reason, kind, state, minutes, run_id, \
                                   starts_at, expires_at) \
         VALUES ($1, $2, $3, $4, 'active', $5, $6, now(), now() + make_interval(mins => $5)) \
         RETURNING *",
    )
    .bind::<Integer, _>(environment_id)
    .bind::<Text, _>(owner)
    .bind::<Text, _>(reason)
    .bind::<Text, _>(kind)
    .bind::<Integer, _>(minutes)
    .bind::<Nullable<BigInt>, _>(run_id)
    .get_result(conn)
}

/// A new reservation at the end of the environment's queue.
pub fn insert_waiting(
    conn: &mut PgConnection,
    environment_id: i32,
    owner: &str,
    reason: &str,
    minutes: i32,
) -> QueryResult<ReservationRow> {
    diesel::insert_into(reservations::table)
        .values((
            reservations::environment_id.eq(environment_id),
            reservations::owner.eq(owner),
            reservations::reason.eq(reason),
            reservations::kind.eq("reservation"),
            reservations::state.eq("waiting"),
            reservations::minutes.eq(minutes),
        ))
        .returning(ReservationRow::as_returning())
        .get_result(conn)
}

/// A waiting reservation begins to hold its environment.
pub fn activate(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE reservations SET state = 'active', starts_at = now(), \
                expires_at = now() + make_interval(mins => minutes) \
         WHERE id = $1 AND state = 'waiting'",
    )
    .bind::<BigInt, _>(id)
    .execute(conn)
}

/// Holds the environment for `owner` after their run `run_id` failed: a
/// new hold, or (when their own hold is holding it already, as their run
/// ran within it) that one lasting at least as long.
pub fn hold_after_failure(
    conn: &mut PgConnection,
    environment_id: i32,
    owner: &str,
    run_id: i64,
    minutes: i32,
) -> QueryResult<()> {
    end_expired(conn, Some(environment_id))?;
    match active(conn, environment_id)? {
        Some(hold) if hold.owner == owner => {
            diesel::sql_query(
                "UPDATE reservations SET expires_at = greatest(expires_at, now() + make_interval(mins => $2)) \
                 WHERE id = $1",
            )
            .bind::<BigInt, _>(hold.id)
            .bind::<Integer, _>(minutes)
            .execute(conn)?;
        }
        // Someone else's: the environment was theirs to give; nothing to do.
        Some(_) => {}
        None => {
            let reason = format!("run {run_id} failed; kept as it was for a look");
            insert_active(
                conn,
                environment_id,
                owner,
                &reason,
                "hold",
                minutes,
                Some(run_id),
            )?;
        }
    }
    Ok(())
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<ReservationRow>> {
    reservations::table
        .find(id)
        .select(ReservationRow::as_select())
        .first(conn)
        .optional()
}

/// The reservation, locked until the transaction ends.
pub fn lock(conn: &mut PgConnection, id: i64) -> QueryResult<Option<ReservationRow>> {
    reservations::table
        .find(id)
        .select(ReservationRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Adds minutes: to the end of an active one (never more than 480 minutes
/// from now), to the length of a waiting one (at most 480).
pub fn extend(conn: &mut PgConnection, id: i64, minutes: i32) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE reservations SET \
           expires_at = CASE WHEN state = 'active' \
               THEN least(greatest(expires_at, now()) + make_interval(mins => $2), \
                          now() + interval '480 minutes') END, \
           minutes = CASE WHEN state = 'waiting' THEN least(minutes + $2, 480) ELSE minutes END \
         WHERE id = $1 AND state IN ('waiting', 'active')",
    )
    .bind::<BigInt, _>(id)
    .bind::<Integer, _>(minutes)
    .execute(conn)
}

/// Ends a reservation before its time.
pub fn end(conn: &mut PgConnection, id: i64, why: &str) -> QueryResult<usize> {
    diesel::update(
        reservations::table
            .find(id)
            .filter(reservations::state.eq_any(["waiting", "active"])),
    )
    .set((
        reservations::state.eq("ended"),
        reservations::ended_at.eq(diesel::dsl::now),
        reservations::end_reason.eq(why),
    ))
    .execute(conn)
}

/// The environment's reservations now: the active one and those waiting,
/// in queue order, then the last ten that ended.
pub fn of_environment(
    conn: &mut PgConnection,
    environment_id: i32,
) -> QueryResult<Vec<ReservationRow>> {
    diesel::sql_query(
        "(SELECT * FROM reservations WHERE environment_id = $1 AND state <> 'ended' \
          ORDER BY state = 'waiting', queue_order) \
         UNION ALL \
         (SELECT * FROM reservations WHERE environment_id = $1 AND state = 'ended' \
          ORDER BY ended_at DESC LIMIT 10)",
    )
    .bind::<Integer, _>(environment_id)
    .load(conn)
}

/// 1 for the first thing in its environment's queue: the runs queued and
/// the reservations waiting before it count.
pub fn queue_position(conn: &mut PgConnection, reservation: &ReservationRow) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Position {
        #[diesel(sql_type = BigInt)]
        position: i64,
    }
    let position: Position = diesel::sql_query(
        "SELECT (SELECT count(*) FROM test_runs q WHERE q.environment_id = $1 \
                   AND q.status = 'queued' AND q.id < $2) \
              + (SELECT count(*) FROM reservations w WHERE w.environment_id = $1 \
                   AND w.state = 'waiting' AND w.queue_order <= $2) AS position",
    )
    .bind::<Integer, _>(reservation.environment_id)
    .bind::<BigInt, _>(reservation.queue_order)
    .get_result(conn)?;
    Ok(position.position)
}

/// When the next active reservation ends, or maintenance does, whichever
/// is first: the scheduler wakes then.
pub fn next_deadline(conn: &mut PgConnection) -> QueryResult<Option<DateTime<Utc>>> {
    #[derive(QueryableByName)]
    struct Next {
        #[diesel(sql_type = Nullable<diesel::sql_types::Timestamptz>)]
        at: Option<DateTime<Utc>>,
    }
    let next: Next = diesel::sql_query(
        "SELECT least((SELECT min(expires_at) FROM reservations WHERE state = 'active'), \
                      (SELECT min(maintenance_until) FROM environments \
                       WHERE maintenance_reason IS NOT NULL)) AS at",
    )
    .get_result(conn)?;
    Ok(next.at)
}
