//! Test history and insights across runs: per-test outcomes over time,
//! flaky tests, failing tests and slow tests.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Integer, Nullable, Text, Timestamptz};
use shared::stats::median;
use shared::{CaseOutcome, FailingTest, FlakyTest, HistoryItem, SlowTest};

/// How many tests each insight lists.
const MAX_TESTS: i64 = 50;

#[derive(QueryableByName)]
struct HistoryRow {
    #[diesel(sql_type = BigInt)]
    run_id: i64,
    #[diesel(sql_type = Integer)]
    environment_id: i32,
    #[diesel(sql_type = Text)]
    nodeid: String,
    #[diesel(sql_type = Text)]
    outcome: CaseOutcome,
    #[diesel(sql_type = BigInt)]
    duration_ms: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    finished_at: Option<DateTime<Utc>>,
}

impl From<HistoryRow> for HistoryItem {
    fn from(row: HistoryRow) -> Self {
        HistoryItem {
            run_id: row.run_id,
            environment_id: row.environment_id,
            nodeid: row.nodeid,
            outcome: row.outcome,
            duration_ms: row.duration_ms,
            finished_at: row.finished_at,
        }
    }
}

/// What a history is asked for.
pub enum HistoryOf {
    /// One test, by its node id.
    Test(String),
    /// Every test of a file (and the file itself, for collection errors).
    File(String),
}

/// The newest `limit` results of a test, or of each test of a file.
pub fn history(
    conn: &mut PgConnection,
    of: &HistoryOf,
    limit: i64,
) -> QueryResult<Vec<HistoryItem>> {
    let rows: Vec<HistoryRow> = match of {
        // A very long id is stored shortened; asked for whole, it is found.
        HistoryOf::Test(nodeid) => diesel::sql_query(
            "SELECT c.run_id, r.environment_id, c.nodeid, c.outcome, c.duration_ms, r.finished_at \
             FROM run_cases c JOIN test_runs r ON r.id = c.run_id \
             WHERE c.nodeid = $1 ORDER BY c.run_id DESC, c.id DESC LIMIT $2",
        )
        .bind::<Text, _>(super::runs::stored_nodeid(nodeid))
        .bind::<BigInt, _>(limit)
        .load(conn)?,
        // The file's distinct node ids first, each found by one step
        // along the prefix index (in its byte order, `~<~`), then the
        // newest results of each from the (nodeid, run_id) index: the
        // work follows the answer's size, not the file's whole history.
        HistoryOf::File(path) => diesel::sql_query(
            "WITH RECURSIVE tests AS ( \
               (SELECT nodeid FROM run_cases WHERE nodeid LIKE $2 ORDER BY nodeid USING ~<~ LIMIT 1) \
               UNION ALL \
               SELECT (SELECT c.nodeid FROM run_cases c \
                       WHERE c.nodeid LIKE $2 AND c.nodeid ~>~ t.nodeid \
                       ORDER BY c.nodeid USING ~<~ LIMIT 1) \
               FROM tests t WHERE t.nodeid IS NOT NULL \
             ) \
             SELECT h.run_id, h.environment_id, n.nodeid, h.outcome, h.duration_ms, h.finished_at \
             FROM (SELECT nodeid FROM tests WHERE nodeid IS NOT NULL UNION SELECT $1) AS n \
             CROSS JOIN LATERAL ( \
               SELECT c.run_id, r.environment_id, c.outcome, c.duration_ms, r.finished_at \
               FROM run_cases c JOIN test_runs r ON r.id = c.run_id \
               WHERE c.nodeid = n.nodeid ORDER BY c.run_id DESC, c.id DESC LIMIT $3 \
             ) AS h \
             ORDER BY h.run_id DESC, n.nodeid",
        )
        .bind::<Text, _>(path)
        .bind::<Text, _>(format!("{}::%", escape_like(path)))
        .bind::<BigInt, _>(limit)
        .load(conn)?,
    };
    Ok(rows.into_iter().map(HistoryItem::from).collect())
}

/// `%`, `_` and `\` stand for themselves in a LIKE pattern after this.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Keeps the tables insights read up to date with a run that has just
/// finished; called in the transaction that writes its cases.
pub fn record_finished_run(conn: &mut PgConnection, run_id: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT record_test_results($1)")
        .bind::<BigInt, _>(run_id)
        .execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct FlakyRow {
    #[diesel(sql_type = Text)]
    nodeid: String,
    #[diesel(sql_type = BigInt)]
    flips: i64,
    #[diesel(sql_type = BigInt)]
    suspect_flips: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_flip_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Array<BigInt>)]
    run_ids: Vec<i64>,
}

/// Failures and durations of one test over part of the window.
#[derive(QueryableByName)]
struct StatsRow {
    #[diesel(sql_type = Text)]
    nodeid: String,
    #[diesel(sql_type = BigInt)]
    failures: i64,
    /// 4-byte big-endian integers, as `test_period_stats` keeps them.
    #[diesel(sql_type = Bytea)]
    durations_ms: Vec<u8>,
}

#[derive(QueryableByName)]
struct RunIdsRow {
    #[diesel(sql_type = Text)]
    nodeid: String,
    #[diesel(sql_type = Array<BigInt>)]
    run_ids: Vec<i64>,
}

/// Where the window starts: `now()` minus the days, in the one clock every
/// instance shares.
const WINDOW_START: &str = "now() - make_interval(days => $1)";

/// The flaky tests among the runs finished in the last `days` days.
///
/// A test is flaky when, on one environment, its outcome changed between
/// passed and failed (an error counts as failed) from one run to the next,
/// both runs within the window; `flips` counts those changes over all
/// environments and `run_ids` are the runs on either side of them. At most
/// 50 tests, each with at most the 50 newest runs behind it.
///
/// Flips on the `suspect` environments are counted apart: a test whose
/// only flips are there is still listed, with `flips` 0.
///
/// Reads the flips `record_test_results` keeps (see its migration), in one
/// statement.
pub fn flaky(conn: &mut PgConnection, days: i32, suspect: &[i32]) -> QueryResult<Vec<FlakyTest>> {
    // A test's newest 50 flips hold the newest 50 runs on either side of
    // its flips: each flip's run is newer than the run before it.
    let rows: Vec<FlakyRow> = diesel::sql_query(format!(
        "WITH ranked AS ( \
           SELECT nodeid, count(*) FILTER (WHERE environment_id <> ALL($3)) AS flips, \
                  count(*) FILTER (WHERE environment_id = ANY($3)) AS suspect_flips, \
                  max(flipped_at) AS last_flip_at FROM test_flips \
           WHERE flipped_at >= {WINDOW_START} AND previous_at >= {WINDOW_START} \
           GROUP BY nodeid \
           ORDER BY flips DESC, last_flip_at DESC, nodeid COLLATE \"C\" LIMIT $2 \
         ) \
         SELECT r.nodeid, r.flips, r.suspect_flips, r.last_flip_at, ARRAY( \
           SELECT DISTINCT side.run_id FROM ( \
             SELECT f.run_id, f.previous_run_id FROM test_flips f \
             WHERE f.nodeid = r.nodeid \
               AND f.flipped_at >= {WINDOW_START} AND f.previous_at >= {WINDOW_START} \
             ORDER BY f.run_id DESC LIMIT $2 \
           ) AS newest \
           CROSS JOIN LATERAL (VALUES (newest.run_id), (newest.previous_run_id)) AS side (run_id) \
           ORDER BY side.run_id DESC LIMIT $2 \
         ) AS run_ids \
         FROM ranked r ORDER BY r.flips DESC, r.last_flip_at DESC, r.nodeid COLLATE \"C\""
    ))
    .bind::<Integer, _>(days)
    .bind::<BigInt, _>(MAX_TESTS)
    .bind::<Array<Integer>, _>(suspect)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| FlakyTest {
            nodeid: r.nodeid,
            flips: r.flips,
            last_flip_at: r.last_flip_at,
            run_ids: r.run_ids,
            flips_on_suspect_environments: r.suspect_flips,
            failures_on_suspect_environments: 0,
            suspect_environment_ids: Vec::new(),
        })
        .collect())
}

/// The failing and the slowest tests among the runs finished in the last
/// `days` days: failing tests count their failed or erroring results; the
/// slowest rank by the median duration of their results other than
/// skipped. Each list holds at most 50 tests, each with at most the 50
/// newest runs behind it.
///
/// Reads the tables `record_test_results` keeps (see its migration), not
/// every case row in the window, both lists in one snapshot.
pub fn failing_and_slowest(
    conn: &mut PgConnection,
    days: i32,
) -> QueryResult<(Vec<FailingTest>, Vec<SlowTest>)> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            let stats = window_stats(conn, days)?;
            let failing = most_failing(&stats);
            let slowest = slowest(stats);
            let first_run = first_run_in_window(conn, days)?;
            let failing_runs =
                runs_of(conn, days, first_run, failing.iter().map(|(n, _)| n), true)?;
            let slowest_runs =
                runs_of(conn, days, first_run, slowest.iter().map(|(n, _)| n), false)?;
            let failing = failing
                .into_iter()
                .map(|(nodeid, failures)| FailingTest {
                    run_ids: failing_runs.get(&nodeid).cloned().unwrap_or_default(),
                    nodeid,
                    failures,
                })
                .collect();
            let slowest = slowest
                .into_iter()
                .map(|(nodeid, median_ms)| SlowTest {
                    run_ids: slowest_runs.get(&nodeid).cloned().unwrap_or_default(),
                    nodeid,
                    median_ms,
                })
                .collect();
            Ok((failing, slowest))
        })
}

/// One test's results over the window.
struct TestStats {
    failures: i64,
    durations_ms: Vec<i32>,
}

/// Each test's failures and durations over the window, from case rows for
/// the part before its first whole hour, hourly rows up to its first
/// midnight (UTC) and daily rows after that. The database joins each
/// test's parts into one row, so that a test's durations arrive as one
/// byte string (millions of them in a month of a busy suite) and are
/// decoded into one allocation.
fn window_stats(conn: &mut PgConnection, days: i32) -> QueryResult<Vec<(String, TestStats)>> {
    // Whole hours and days are added as fixed lengths, whatever the
    // session's time zone.
    let rows: Vec<StatsRow> = diesel::sql_query(format!(
        "WITH bounds AS ( \
           SELECT start, \
                  date_trunc('hour', start, 'UTC') \
                    + CASE WHEN date_trunc('hour', start, 'UTC') < start \
                           THEN interval '1 hour' ELSE interval '0' END AS first_hour, \
                  date_trunc('day', start, 'UTC') \
                    + CASE WHEN date_trunc('day', start, 'UTC') < start \
                           THEN interval '24 hours' ELSE interval '0' END AS first_day \
           FROM (SELECT {WINDOW_START} AS start) s \
         ) \
         SELECT nodeid, sum(failures)::bigint AS failures, \
                string_agg(durations_ms, ''::bytea) AS durations_ms \
         FROM ( \
           SELECT c.nodeid, (c.outcome IN ('failed', 'error'))::int AS failures, \
                  CASE WHEN c.outcome = 'skipped' THEN ''::bytea \
                       ELSE int4send(least(c.duration_ms, 2147483647)::int) END AS durations_ms \
           FROM bounds b \
           JOIN test_runs r ON r.finished_at >= b.start AND r.finished_at < b.first_hour \
           JOIN run_cases c ON c.run_id = r.id \
           UNION ALL \
           SELECT s.nodeid, s.failures, s.durations_ms \
           FROM bounds b JOIN test_period_stats s \
             ON s.period = 'hour' AND s.starts_at >= b.first_hour AND s.starts_at < b.first_day \
           UNION ALL \
           SELECT s.nodeid, s.failures, s.durations_ms \
           FROM bounds b JOIN test_period_stats s \
             ON s.period = 'day' AND s.starts_at >= b.first_day \
         ) AS parts \
         GROUP BY nodeid"
    ))
    .bind::<Integer, _>(days)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let durations_ms = row
                .durations_ms
                .chunks_exact(4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let stats = TestStats {
                failures: row.failures,
                durations_ms,
            };
            (row.nodeid, stats)
        })
        .collect())
}

/// The tests that failed most often, most first.
fn most_failing(stats: &[(String, TestStats)]) -> Vec<(String, i64)> {
    let mut failing: Vec<(String, i64)> = stats
        .iter()
        .filter(|(_, test)| test.failures > 0)
        .map(|(nodeid, test)| (nodeid.clone(), test.failures))
        .collect();
    failing.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    failing.truncate(MAX_TESTS as usize);
    failing
}

/// The tests with the longest median duration, longest first.
fn slowest(stats: Vec<(String, TestStats)>) -> Vec<(String, i64)> {
    let mut slowest: Vec<(String, i64)> = stats
        .into_iter()
        .filter_map(|(nodeid, mut test)| {
            Some((nodeid, median(&mut test.durations_ms).map(i64::from)?))
        })
        .collect();
    slowest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    slowest.truncate(MAX_TESTS as usize);
    slowest
}

#[derive(QueryableByName)]
struct FirstRun {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The lowest id of the runs finished within the window (0 if none): no
/// run below it is in the window.
fn first_run_in_window(conn: &mut PgConnection, days: i32) -> QueryResult<i64> {
    // The fence (OFFSET 0) keeps the planner on the (finished_at) INCLUDE
    // (id) index: a walk up the primary key filtering on finished_at would
    // read most of the table first.
    let first: FirstRun = diesel::sql_query(format!(
        "SELECT coalesce(min(id), 0) AS id FROM ( \
           SELECT id FROM test_runs WHERE finished_at >= {WINDOW_START} OFFSET 0 \
         ) AS in_window"
    ))
    .bind::<Integer, _>(days)
    .get_result(conn)?;
    Ok(first.id)
}

/// The newest runs within the window behind each of `nodeids`: those where
/// it failed, or (with `failed_only` false) where it ran and was not
/// skipped.
fn runs_of<'a>(
    conn: &mut PgConnection,
    days: i32,
    first_run: i64,
    nodeids: impl Iterator<Item = &'a String>,
    failed_only: bool,
) -> QueryResult<HashMap<String, Vec<i64>>> {
    let nodeids: Vec<&String> = nodeids.collect();
    if nodeids.is_empty() {
        return Ok(HashMap::new());
    }
    let outcomes = if failed_only {
        "c.outcome IN ('failed', 'error')"
    } else {
        "c.outcome <> 'skipped'"
    };
    // `first_run` bounds the walk down each test's index entries. The
    // run's finish is looked up row by row, newest first, as a subquery:
    // joined, the planner would hash every run of the window once per
    // test (at a million runs, 90 ms instead of 20 for the 50 tests).
    let rows: Vec<RunIdsRow> = diesel::sql_query(format!(
        "SELECT t.nodeid, ARRAY( \
           SELECT c.run_id FROM run_cases c \
           WHERE c.nodeid = t.nodeid AND {outcomes} AND c.run_id >= $3 \
             AND (SELECT r.finished_at FROM test_runs r WHERE r.id = c.run_id) \
                 >= {WINDOW_START} \
           ORDER BY c.run_id DESC LIMIT $4 \
         ) AS run_ids \
         FROM unnest($2::text[]) AS t (nodeid)"
    ))
    .bind::<Integer, _>(days)
    .bind::<Array<Text>, _>(nodeids)
    .bind::<BigInt, _>(first_run)
    .bind::<BigInt, _>(MAX_TESTS)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.nodeid, r.run_ids)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
    }
}
