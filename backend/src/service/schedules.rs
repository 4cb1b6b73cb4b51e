//! Schedules: runs queued by a 5-field cron expression read in an IANA
//! time zone. [`fire_due`] takes the time to fire at, so that the
//! service's tick passes the database's clock and tests a clock of their
//! own.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use serde_json::Value;
use shared::validate::{Fields, TestPath};
use shared::{CheckedSchedule, Input, NewSchedule, Schedule};

use super::{missing, ServiceError};
use crate::catalog::TestsRoot;
use crate::db;
use crate::db::models::NewRunRow;
use crate::db::schedules::{ScheduleRow, ScheduleSettings};

/// A fire later than this is one that was missed (no instance was up),
/// not one taken on the next tick; its run says so.
pub const MISSED_AFTER: Duration = Duration::seconds(60);
/// The most missed fires counted for the note of the one run made for them.
const MOST_MISSED_COUNTED: usize = 10_000;

/// A cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct CronTime {
    cron: croner::Cron,
    timezone: Tz,
}

impl CronTime {
    /// Parses both, naming the bad field: an expression croner refuses, one
    /// that never fires, an unknown time zone.
    pub fn parse(cron: &str, timezone: &str) -> Result<CronTime, Fields> {
        let mut fields = Fields::default();
        let parsed = fields.check(
            "cron",
            croner::Cron::new(cron)
                .parse()
                .map_err(|e| format!("is not a valid cron expression: {e}")),
        );
        let tz = fields.check(
            "timezone",
            timezone.parse::<Tz>().map_err(|_| {
                format!("{timezone:?} is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)")
            }),
        );
        let (Some(cron), Some(timezone)) = (parsed, tz) else {
            return Err(fields);
        };
        let time = CronTime { cron, timezone };
        if time.next_after(Utc::now()).is_none() {
            fields.add("cron", "never fires (no such date)");
            return Err(fields);
        }
        Ok(time)
    }

    /// The first fire strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    }
}

/// A schedule's checked body with its parsed time.
struct Checked {
    body: CheckedSchedule,
    time: CronTime,
}

fn check(tests_root: &TestsRoot, new: &NewSchedule) -> Result<Checked, ServiceError> {
    let mut fields = Fields::default();
    let body = new.check(&mut fields);
    let time = match &body {
        Some(body) => match CronTime::parse(&body.cron, &body.timezone) {
            Ok(time) => Some(time),
            Err(bad) => {
                for (field, why) in bad.into_inner() {
                    fields.add(&field, why);
                }
                None
            }
        },
        None => None,
    };
    if let Some(body) = &body {
        if let Err(why) = super::runs::paths_exist(tests_root, &body.paths) {
            fields.add("paths", why);
        }
    }
    match (body, time) {
        (Some(body), Some(time)) if fields.is_empty() => Ok(Checked { body, time }),
        _ => Err(ServiceError::invalid(fields.into_inner())),
    }
}

/// The body with every field it leaves out taken from the schedule as it is.
fn with_current(new: &NewSchedule, current: Schedule) -> NewSchedule {
    fn or<T>(given: &Input<T>, current: T) -> Input<T>
    where
        T: Clone,
    {
        match given {
            Input::Missing => Input::Given(current),
            other => other.clone(),
        }
    }
    let target_given = !new.environment_id.is_missing() || !new.environment_label.is_missing();
    NewSchedule {
        name: or(&new.name, current.name),
        cron: or(&new.cron, current.cron),
        timezone: or(&new.timezone, Some(current.timezone)),
        environment_id: if target_given {
            new.environment_id.clone()
        } else {
            Input::Given(current.environment_id)
        },
        environment_label: if target_given {
            new.environment_label.clone()
        } else {
            Input::Given(current.environment_label)
        },
        paths: or(&new.paths, current.paths),
        enabled: or(&new.enabled, current.enabled),
        username: or(&new.username, Some(current.username)),
        hold_on_failure_minutes: or(
            &new.hold_on_failure_minutes,
            current.hold_on_failure_minutes,
        ),
    }
}

fn settings(checked: &Checked, now: DateTime<Utc>) -> ScheduleSettings {
    let body = &checked.body;
    let paths: Vec<String> = body.paths.iter().map(TestPath::as_arg).collect();
    ScheduleSettings {
        name: body.name.clone(),
        cron: body.cron.clone(),
        timezone: body.timezone.clone(),
        environment_id: body.target.environment_id(),
        environment_label: body.target.label().map(str::to_string),
        paths: Value::from(paths),
        username: body.username.clone(),
        hold_on_failure_minutes: body.hold_on_failure_minutes,
        enabled: body.enabled,
        next_run_at: if body.enabled {
            checked.time.next_after(now)
        } else {
            None
        },
    }
}

pub fn create(
    conn: &mut PgConnection,
    tests_root: &TestsRoot,
    new: &NewSchedule,
) -> Result<Schedule, ServiceError> {
    let checked = check(tests_root, new)?;
    let row = conn.transaction(|conn| {
        let target = &checked.body.target;
        super::runs::lock_target(conn, target.environment_id(), target.label())?;
        let now = db::reservations::now(conn)?;
        Ok::<_, ServiceError>(db::schedules::insert(conn, &settings(&checked, now))?)
    })?;
    tracing::info!(schedule_id = row.id, name = %row.name, cron = %row.cron, timezone = %row.timezone,
        next_run_at = ?row.next_run_at, "schedule added");
    Ok(row.into_schedule())
}

/// Changes a schedule's settings: those given replace the current ones,
/// those left out stay (`{"enabled": false}` disables it); its next fire
/// is counted from now.
pub fn update(
    conn: &mut PgConnection,
    tests_root: &TestsRoot,
    id: i64,
    new: &NewSchedule,
) -> Result<Schedule, ServiceError> {
    let current = db::schedules::find(conn, id)?
        .ok_or_else(|| missing(format_args!("schedule {id}")))?
        .into_schedule();
    let checked = check(tests_root, &with_current(new, current))?;
    let row = conn.transaction(|conn| {
        let target = &checked.body.target;
        super::runs::lock_target(conn, target.environment_id(), target.label())?;
        let now = db::reservations::now(conn)?;
        db::schedules::update(conn, id, &settings(&checked, now))?
            .ok_or_else(|| missing(format_args!("schedule {id}")))
    })?;
    tracing::info!(schedule_id = id, enabled = row.enabled, next_run_at = ?row.next_run_at, "schedule changed");
    Ok(row.into_schedule())
}

pub fn get(conn: &mut PgConnection, id: i64) -> Result<Schedule, ServiceError> {
    db::schedules::find(conn, id)?
        .map(ScheduleRow::into_schedule)
        .ok_or_else(|| missing(format_args!("schedule {id}")))
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<Schedule>, ServiceError> {
    Ok(db::schedules::list(conn)?
        .into_iter()
        .map(ScheduleRow::into_schedule)
        .collect())
}

/// Deletes a schedule; the runs it queued stay, without it.
pub fn delete(conn: &mut PgConnection, id: i64) -> Result<(), ServiceError> {
    if db::schedules::delete(conn, id)? == 0 {
        return Err(missing(format_args!("schedule {id}")));
    }
    tracing::info!(schedule_id = id, "schedule deleted");
    Ok(())
}

/// What one fire did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub schedule_id: i64,
    /// The fire time it was for.
    pub fire_at: DateTime<Utc>,
    /// The run it queued, or why it queued none.
    pub run: Result<i64, String>,
    /// Fires missed (the one run made up for all of them).
    pub missed: usize,
}

/// The most schedules one call fires: a backlog is worked off over a few
/// ticks rather than in one long burst.
const MOST_FIRES_AT_ONCE: usize = 100;

/// Fires every enabled schedule due at `now`: queues one run for it (even
/// when several fires were missed while no instance was up; that run says
/// so) and moves it to its next fire after `now`. Each schedule is taken
/// under its row's lock and moved in the same transaction as its run is
/// queued, so any number of instances calling this fire it once.
pub fn fire_due(
    conn: &mut PgConnection,
    tests_root: &TestsRoot,
    max_queued: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Fired>, ServiceError> {
    let mut fired = Vec::new();
    while fired.len() < MOST_FIRES_AT_ONCE {
        let one = conn.transaction(|conn| {
            let Some(row) = db::schedules::lock_next_due(conn, now)? else {
                return Ok::<_, ServiceError>(None);
            };
            Ok(Some(fire(conn, tests_root, max_queued, row, now)?))
        })?;
        match one {
            Some(one) => fired.push(one),
            None => break,
        }
    }
    Ok(fired)
}

fn fire(
    conn: &mut PgConnection,
    tests_root: &TestsRoot,
    max_queued: i64,
    row: ScheduleRow,
    now: DateTime<Utc>,
) -> Result<Fired, ServiceError> {
    let Some(fire_at) = row.next_run_at else {
        return Err(ServiceError::internal("a due schedule without a fire time"));
    };
    let time = CronTime::parse(&row.cron, &row.timezone).ok();
    let next = time.as_ref().and_then(|t| t.next_after(now));
    let missed = match (&time, now - fire_at > MISSED_AFTER) {
        (Some(time), true) => missed_fires(time, fire_at, now),
        _ => 0,
    };
    let note = (missed > 0).then(|| missed_note(fire_at, missed, now));
    let run = if time.is_none() {
        Err(format!(
            "the cron expression {:?} in {} no longer parses",
            row.cron, row.timezone
        ))
    } else {
        queue_run(conn, tests_root, max_queued, &row, fire_at, note)
    };
    let (run_id, error) = match &run {
        Ok(id) => (Some(*id), None),
        Err(why) => (None, Some(why.as_str())),
    };
    // Under the row's lock nobody else can have moved it; if someone did,
    // this fire is theirs: the whole transaction, run included, goes.
    if !db::schedules::advance(conn, row.id, fire_at, next, run_id, error)? {
        return Err(ServiceError::Conflict(format!(
            "schedule {} was fired by someone else",
            row.id
        )));
    }
    match &run {
        Ok(run_id) => tracing::info!(schedule_id = row.id, name = %row.name, %fire_at, run_id,
            missed, next_run_at = ?next, "schedule fired"),
        Err(why) => tracing::warn!(schedule_id = row.id, name = %row.name, %fire_at,
            error = %why, "schedule fired but queued no run"),
    }
    Ok(Fired {
        schedule_id: row.id,
        fire_at,
        run,
        missed,
    })
}

/// How many fires from `first` up to `now` were missed, `first` included.
fn missed_fires(time: &CronTime, first: DateTime<Utc>, now: DateTime<Utc>) -> usize {
    let mut count = 1;
    let mut at = first;
    while count < MOST_MISSED_COUNTED {
        match time.next_after(at) {
            Some(next) if next <= now => {
                count += 1;
                at = next;
            }
            _ => break,
        }
    }
    count
}

fn missed_note(fire_at: DateTime<Utc>, missed: usize, now: DateTime<Utc>) -> String {
    let when = fire_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let late = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if missed == 1 {
        format!("missed fire of {when} (no instance was running); run once at {late}")
    } else {
        format!("{missed} missed fires since {when} (no instance was running); run once at {late}")
    }
}

/// Queues the schedule's run for fire `fire_at` in a savepoint: a run that
/// cannot be queued (its environment or files went, the queues are full)
/// leaves the fire recorded with the reason, not undone.
fn queue_run(
    conn: &mut PgConnection,
    tests_root: &TestsRoot,
    max_queued: i64,
    row: &ScheduleRow,
    fire_at: DateTime<Utc>,
    note: Option<String>,
) -> Result<i64, String> {
    let paths = row.paths();
    let parsed: Result<Vec<TestPath>, String> = paths.iter().map(|p| TestPath::parse(p)).collect();
    let result = conn.transaction(|conn| {
        super::runs::room_in_the_queues(conn, max_queued)?;
        let parsed = parsed.map_err(|why| ServiceError::field("paths", why))?;
        let run = super::runs::insert(
            conn,
            NewRunRow {
                username: row.username.clone(),
                environment_id: row.environment_id,
                environment_label: row.environment_label.clone(),
                paths: Value::from(paths.clone()),
                rerun_of: None,
                hold_on_failure_minutes: row.hold_on_failure_minutes,
                run_group_id: None,
                shard: None,
                schedule_id: Some(row.id),
                scheduled_for: Some(fire_at),
                schedule_note: note,
                selection: None,
                token_id: None,
            },
            || {
                super::runs::paths_exist(tests_root, &parsed)
                    .map_err(|why| ServiceError::field("paths", why))
            },
        )?;
        Ok::<_, ServiceError>(run.id)
    });
    result.map_err(|e| e.to_string())
}
