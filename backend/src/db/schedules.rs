//! Schedules: their rows, and the due ones taken one at a time under a row
//! lock (`SKIP LOCKED`), so that each fire is taken by one instance.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use shared::Schedule;

use super::schema::schedules;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = schedules, check_for_backend(diesel::pg::Pg))]
pub struct ScheduleRow {
    pub id: i64,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub environment_id: Option<i32>,
    pub environment_label: Option<String>,
    pub paths: serde_json::Value,
    pub username: String,
    pub hold_on_failure_minutes: Option<i32>,
    pub enabled: bool,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_id: Option<i64>,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ScheduleRow {
    pub fn paths(&self) -> Vec<String> {
        serde_json::from_value(self.paths.clone()).unwrap_or_default()
    }

    pub fn into_schedule(self) -> Schedule {
        Schedule {
            id: self.id,
            paths: self.paths(),
            name: self.name,
            cron: self.cron,
            timezone: self.timezone,
            environment_id: self.environment_id,
            environment_label: self.environment_label,
            username: self.username,
            hold_on_failure_minutes: self.hold_on_failure_minutes,
            enabled: self.enabled,
            next_run_at: self.next_run_at,
            last_run_id: self.last_run_id,
            last_fired_at: self.last_fired_at,
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A schedule's settings, as written by a create or an update.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = schedules, treat_none_as_null = true)]
pub struct ScheduleSettings {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub environment_id: Option<i32>,
    pub environment_label: Option<String>,
    pub paths: serde_json::Value,
    pub username: String,
    pub hold_on_failure_minutes: Option<i32>,
    pub enabled: bool,
    pub next_run_at: Option<DateTime<Utc>>,
}

pub fn insert(conn: &mut PgConnection, settings: &ScheduleSettings) -> QueryResult<ScheduleRow> {
    diesel::insert_into(schedules::table)
        .values(settings)
        .returning(ScheduleRow::as_returning())
        .get_result(conn)
}

/// Replaces a schedule's settings; `None` if there is no such schedule.
pub fn update(
    conn: &mut PgConnection,
    id: i64,
    settings: &ScheduleSettings,
) -> QueryResult<Option<ScheduleRow>> {
    diesel::update(schedules::table.find(id))
        .set((
            settings,
            schedules::updated_at.eq(diesel::dsl::now),
            schedules::last_error.eq(None::<String>),
        ))
        .returning(ScheduleRow::as_returning())
        .get_result(conn)
        .optional()
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<ScheduleRow>> {
    schedules::table
        .find(id)
        .select(ScheduleRow::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut PgConnection) -> QueryResult<Vec<ScheduleRow>> {
    schedules::table
        .order(schedules::id)
        .select(ScheduleRow::as_select())
        .load(conn)
}

pub fn delete(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(schedules::table.find(id)).execute(conn)
}

/// The enabled schedule that has been due the longest at `now`, locked;
/// schedules another instance is firing are skipped, not waited for.
pub fn lock_next_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> QueryResult<Option<ScheduleRow>> {
    schedules::table
        .filter(schedules::enabled.eq(true))
        .filter(schedules::next_run_at.le(now))
        .order((schedules::next_run_at, schedules::id))
        .select(ScheduleRow::as_select())
        .for_update()
        .skip_locked()
        .first(conn)
        .optional()
}

/// Moves a fired schedule to its next fire, if it is still at the fire
/// `fired` (compare and set): false if someone moved it first.
pub fn advance(
    conn: &mut PgConnection,
    id: i64,
    fired: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    run_id: Option<i64>,
    error: Option<&str>,
) -> QueryResult<bool> {
    diesel::update(
        schedules::table
            .find(id)
            .filter(schedules::next_run_at.eq(fired)),
    )
    .set((
        schedules::next_run_at.eq(next),
        schedules::last_fired_at.eq(fired),
        schedules::last_run_id.eq(run_id),
        schedules::last_error.eq(error),
    ))
    .execute(conn)
    .map(|n| n > 0)
}
