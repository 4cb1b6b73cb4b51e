//! The aggregates environment health is computed from: finished runs,
//! failure streaks and each test's passes and failures per environment
//! over a window, kept at finish (see the environment_health migration).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};

/// The window's start (`now()` minus `$1` days, in the clock every
/// instance shares), its first whole UTC hour and its first UTC midnight.
/// Whole hours and days are added as fixed lengths, whatever the
/// session's time zone.
pub(super) const BOUNDS: &str = "bounds AS ( \
       SELECT start, \
              date_trunc('hour', start, 'UTC') \
                + CASE WHEN date_trunc('hour', start, 'UTC') < start \
                       THEN interval '1 hour' ELSE interval '0' END AS first_hour, \
              date_trunc('day', start, 'UTC') \
                + CASE WHEN date_trunc('day', start, 'UTC') < start \
                       THEN interval '24 hours' ELSE interval '0' END AS first_day \
       FROM (SELECT now() - make_interval(days => $1) AS start) s \
     )";

/// One test on one environment over the window.
#[derive(Debug, Clone, QueryableByName)]
pub struct TestOnEnvironment {
    #[diesel(sql_type = Integer)]
    pub environment_id: i32,
    #[diesel(sql_type = Text)]
    pub nodeid: String,
    #[diesel(sql_type = BigInt)]
    pub passes: i64,
    #[diesel(sql_type = BigInt)]
    pub failures: i64,
}

/// One environment's runs over the window, and its current streak.
#[derive(Debug, Clone, Default, QueryableByName)]
pub struct RunsOnEnvironment {
    #[diesel(sql_type = Integer)]
    pub environment_id: i32,
    #[diesel(sql_type = BigInt)]
    pub runs: i64,
    #[diesel(sql_type = BigInt)]
    pub failed_runs: i64,
    /// Failed or errored runs in a row ending with its latest run, over
    /// its whole history.
    #[diesel(sql_type = BigInt)]
    pub streak: i64,
    /// Its latest finished run (0 if none).
    #[diesel(sql_type = BigInt)]
    pub last_run_id: i64,
}

/// Everything health is computed from, read in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct WindowFigures {
    /// Every environment, by id, with its runs (zeros without any).
    pub environments: Vec<RunsOnEnvironment>,
    pub tests: Vec<TestOnEnvironment>,
}

pub fn window_figures(conn: &mut PgConnection, days: i32) -> QueryResult<WindowFigures> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            let environments = runs_by_environment(conn, days)?;
            let tests = tests_by_environment(conn, days, None)?;
            Ok(WindowFigures {
                environments,
                tests,
            })
        })
}

fn runs_by_environment(conn: &mut PgConnection, days: i32) -> QueryResult<Vec<RunsOnEnvironment>> {
    diesel::sql_query(format!(
        "WITH {BOUNDS}, parts AS ( \
           SELECT r.environment_id, 1 AS runs, (r.status <> 'success')::int AS failed_runs \
           FROM bounds b JOIN test_runs r \
             ON r.finished_at >= b.start AND r.finished_at < b.first_hour \
           WHERE r.environment_id IS NOT NULL AND r.status IN ('success', 'failed', 'error') \
           UNION ALL \
           SELECT s.environment_id, s.runs, s.failed_runs \
           FROM bounds b JOIN environment_run_stats s \
             ON s.period = 'hour' AND s.starts_at >= b.first_hour AND s.starts_at < b.first_day \
           UNION ALL \
           SELECT s.environment_id, s.runs, s.failed_runs \
           FROM bounds b JOIN environment_run_stats s \
             ON s.period = 'day' AND s.starts_at >= b.first_day \
         ), totals AS ( \
           SELECT environment_id, sum(runs)::bigint AS runs, sum(failed_runs)::bigint AS failed_runs \
           FROM parts GROUP BY environment_id \
         ) \
         SELECT e.id AS environment_id, coalesce(t.runs, 0) AS runs, \
                coalesce(t.failed_runs, 0) AS failed_runs, \
                coalesce(k.failed_runs, 0)::bigint AS streak, \
                coalesce(k.last_run_id, 0) AS last_run_id \
         FROM environments e \
         LEFT JOIN totals t ON t.environment_id = e.id \
         LEFT JOIN environment_streaks k ON k.environment_id = e.id \
         ORDER BY e.id"
    ))
    .bind::<Integer, _>(days)
    .load(conn)
}

/// Each test's passes and failures per environment over the window; with
/// `nodeids`, of those tests only.
fn tests_by_environment(
    conn: &mut PgConnection,
    days: i32,
    nodeids: Option<&[String]>,
) -> QueryResult<Vec<TestOnEnvironment>> {
    let (only_c, only_s) = if nodeids.is_some() {
        (
            "AND c.nodeid = ANY($2) AND c.outcome = 'passed'",
            "AND s.nodeid = ANY($2) AND s.passes > 0",
        )
    } else {
        ("", "")
    };
    let query = diesel::sql_query(format!(
        "WITH {BOUNDS}, parts AS ( \
           SELECT r.environment_id, c.nodeid, (c.outcome = 'passed')::int AS passes, \
                  (c.outcome IN ('failed', 'error'))::int AS failures \
           FROM bounds b \
           JOIN test_runs r ON r.finished_at >= b.start AND r.finished_at < b.first_hour \
           JOIN run_cases c ON c.run_id = r.id \
           WHERE r.environment_id IS NOT NULL AND c.outcome IN ('passed', 'failed', 'error') {only_c} \
           UNION ALL \
           SELECT s.environment_id, s.nodeid, s.passes, s.failures \
           FROM bounds b JOIN environment_test_stats s \
             ON s.period = 'hour' AND s.starts_at >= b.first_hour AND s.starts_at < b.first_day \
           WHERE true {only_s} \
           UNION ALL \
           SELECT s.environment_id, s.nodeid, s.passes, s.failures \
           FROM bounds b JOIN environment_test_stats s \
             ON s.period = 'day' AND s.starts_at >= b.first_day \
           WHERE true {only_s} \
         ) \
         SELECT environment_id, nodeid, sum(passes)::bigint AS passes, \
                sum(failures)::bigint AS failures \
         FROM parts GROUP BY environment_id, nodeid"
    ))
    .bind::<Integer, _>(days);
    match nodeids {
        Some(nodeids) => query.bind::<Array<Text>, _>(nodeids).load(conn),
        None => query.load(conn),
    }
}

#[derive(QueryableByName)]
struct FailedCase {
    #[diesel(sql_type = Text)]
    nodeid: String,
}

/// The distinct node ids a run failed or errored, in order.
pub fn failed_nodeids(conn: &mut PgConnection, run_id: i64) -> QueryResult<Vec<String>> {
    let rows: Vec<FailedCase> = diesel::sql_query(
        "SELECT DISTINCT nodeid FROM run_cases \
         WHERE run_id = $1 AND outcome IN ('failed', 'error') ORDER BY nodeid",
    )
    .bind::<BigInt, _>(run_id)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| r.nodeid).collect())
}

/// For each of `nodeids`, the environments other than `except` it passed
/// on within the window, by id.
pub fn passed_on(
    conn: &mut PgConnection,
    days: i32,
    nodeids: &[String],
    except: Option<i32>,
) -> QueryResult<HashMap<String, Vec<i32>>> {
    let mut passed: HashMap<String, Vec<i32>> = HashMap::new();
    if nodeids.is_empty() {
        return Ok(passed);
    }
    for row in tests_by_environment(conn, days, Some(nodeids))? {
        if row.passes > 0 && Some(row.environment_id) != except {
            passed
                .entry(row.nodeid)
                .or_default()
                .push(row.environment_id);
        }
    }
    for ids in passed.values_mut() {
        ids.sort_unstable();
    }
    Ok(passed)
}

/// Taken by the instance that applies the automatic maintenance rule,
/// for one transaction: one instance at a time.
const AUTO_MAINTENANCE_LOCK: i64 = 0x6865_616c_7468_5f6d;

/// Takes the rule's lock if no other instance has it; false if one has.
pub fn try_lock_auto_maintenance(conn: &mut PgConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS taken")
        .bind::<BigInt, _>(AUTO_MAINTENANCE_LOCK)
        .get_result::<Taken>(conn)
        .map(|t| t.taken)
}

/// The run after which the rule last put each environment into
/// maintenance.
pub fn last_actions(conn: &mut PgConnection) -> QueryResult<HashMap<i32, i64>> {
    use super::schema::environment_health_actions as actions;
    let rows: Vec<(i32, i64)> = actions::table
        .select((actions::environment_id, actions::last_run_id))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Notes that the rule acted on an environment as of its run `last_run_id`.
pub fn record_action(
    conn: &mut PgConnection,
    environment_id: i32,
    last_run_id: i64,
    reason: &str,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO environment_health_actions (environment_id, last_run_id, reason) \
         VALUES ($1, $2, $3) ON CONFLICT (environment_id) DO UPDATE \
         SET last_run_id = excluded.last_run_id, reason = excluded.reason, applied_at = now()",
    )
    .bind::<Integer, _>(environment_id)
    .bind::<BigInt, _>(last_run_id)
    .bind::<Text, _>(reason)
    .execute(conn)?;
    Ok(())
}

/// Locks an environment's row and says whether it is in maintenance;
/// `None` if there is no such environment.
pub fn lock_in_maintenance(conn: &mut PgConnection, id: i32) -> QueryResult<Option<bool>> {
    use super::schema::environments;
    environments::table
        .find(id)
        .select(environments::maintenance_reason.is_not_null())
        .for_no_key_update()
        .first::<bool>(conn)
        .optional()
}
