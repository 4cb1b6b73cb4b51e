//! Test history and insights across runs: per-test outcomes over time,
//! flaky tests, failing tests and slow tests.

use std::collections::HashMap;
use std::ops::Range;

use super::histogram::Histogram;
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

/// Failures and durations of one test over the window, as histograms.
#[derive(QueryableByName)]
struct StatsRow {
    #[diesel(sql_type = Text)]
    nodeid: String,
    #[diesel(sql_type = BigInt)]
    failures: i64,
    /// The histograms of the hourly and daily rows, one after the other.
    #[diesel(sql_type = Bytea)]
    histograms: Vec<u8>,
    /// The durations of the case rows before the window's first whole
    /// hour: 4-byte big-endian integers, as `test_period_stats` keeps them.
    #[diesel(sql_type = Bytea)]
    tail_ms: Vec<u8>,
    #[diesel(sql_type = BigInt)]
    first_run_id: i64,
}

/// The durations of one test's hourly and daily rows in the window.
#[derive(QueryableByName)]
struct DurationsRow {
    #[diesel(sql_type = Text)]
    nodeid: String,
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
/// Reads the tables `record_test_results` keeps (see its migrations), not
/// every case row in the window, both lists in one snapshot: histograms of
/// every test's durations, then the durations themselves of only the tests
/// whose median may rank among the slowest, for their exact medians.
pub fn failing_and_slowest(
    conn: &mut PgConnection,
    days: i32,
) -> QueryResult<(Vec<FailingTest>, Vec<SlowTest>)> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            // Every test's histograms are joined in memory: a thousand tests
            // over 30 days outgrow the default 4 MB and spill to disk.
            diesel::sql_query("SET LOCAL work_mem = '32MB'").execute(conn)?;
            let bounds = window_bounds(conn, days)?;
            let window = window_stats(conn, &bounds)?;
            let failing = most_failing(&window.tests);
            let slowest = slowest(conn, &bounds, window.tests)?;
            let first_run = window.first_run_id;
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
    /// The bucket of its durations that holds their lower median; `None`
    /// when all its results were skipped.
    median_bucket: Option<Range<i64>>,
    /// The durations of the case rows before the window's first whole hour.
    tail_ms: Vec<i32>,
}

/// Every test's results over the window.
struct WindowStats {
    tests: Vec<(String, TestStats)>,
    /// No run with a result in the window has a lower id (0 if none has).
    first_run_id: i64,
}

/// Where the window's three parts start: the window itself (case rows
/// from there), its first whole hour (hourly rows from there) and its
/// first midnight, UTC (daily rows from there).
#[derive(QueryableByName)]
struct Bounds {
    #[diesel(sql_type = Timestamptz)]
    start: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    first_hour: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    first_day: DateTime<Utc>,
}

/// The window's bounds, by the database's clock (the transaction's
/// start), as environment health takes them. Bound as values, they let the
/// planner see how few rows each part has.
fn window_bounds(conn: &mut PgConnection, days: i32) -> QueryResult<Bounds> {
    diesel::sql_query(format!(
        "WITH {} SELECT start, first_hour, first_day FROM bounds",
        super::health::BOUNDS
    ))
    .bind::<Integer, _>(days)
    .get_result(conn)
}

/// Each test's failures and the histogram of its durations over the
/// window, from case rows for the part before its first whole hour, hourly
/// rows up to its first midnight (UTC) and daily rows after that. The
/// database joins each test's parts into one row: a few bytes per bucket
/// that a row has durations in, whatever their number.
fn window_stats(conn: &mut PgConnection, bounds: &Bounds) -> QueryResult<WindowStats> {
    let rows: Vec<StatsRow> = diesel::sql_query(
        "SELECT nodeid, sum(failures)::bigint AS failures, \
                coalesce(string_agg(histogram, ''::bytea), ''::bytea) AS histograms, \
                coalesce(string_agg(tail_ms, ''::bytea), ''::bytea) AS tail_ms, \
                min(first_run_id) AS first_run_id \
         FROM ( \
           SELECT c.nodeid, (c.outcome IN ('failed', 'error'))::int AS failures, \
                  NULL::bytea AS histogram, \
                  CASE WHEN c.outcome = 'skipped' THEN NULL \
                       ELSE int4send(least(c.duration_ms, 2147483647)::int) END AS tail_ms, \
                  c.run_id AS first_run_id \
           FROM test_runs r JOIN run_cases c ON c.run_id = r.id \
           WHERE r.finished_at >= $1 AND r.finished_at < $2 \
           UNION ALL \
           SELECT nodeid, failures, histogram, NULL, first_run_id FROM test_period_stats \
           WHERE period = 'hour' AND starts_at >= $2 AND starts_at < $3 \
           UNION ALL \
           SELECT nodeid, failures, histogram, NULL, first_run_id FROM test_period_stats \
           WHERE period = 'day' AND starts_at >= $3 \
         ) AS parts \
         GROUP BY nodeid",
    )
    .bind::<Timestamptz, _>(bounds.start)
    .bind::<Timestamptz, _>(bounds.first_hour)
    .bind::<Timestamptz, _>(bounds.first_day)
    .load(conn)?;
    let first_run_id = rows.iter().map(|row| row.first_run_id).min().unwrap_or(0);
    let mut histogram = Histogram::default();
    let tests = rows
        .into_iter()
        .map(|row| {
            let tail_ms: Vec<i32> = decode_durations(&row.tail_ms).collect();
            histogram.clear();
            histogram.add_encoded(&row.histograms);
            tail_ms.iter().for_each(|ms| histogram.add(*ms));
            let stats = TestStats {
                failures: row.failures,
                median_bucket: histogram.median_bounds(),
                tail_ms,
            };
            (row.nodeid, stats)
        })
        .collect();
    Ok(WindowStats {
        tests,
        first_run_id,
    })
}

/// 4-byte big-endian integers, one after the other.
fn decode_durations(bytes: &[u8]) -> impl Iterator<Item = i32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
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

/// The tests with the longest median duration, longest first, each with
/// its exact (lower) median.
///
/// A median lies in the bucket its histogram names. At least 50 tests
/// have a median at or above the 50th highest lower bound of those
/// buckets, so a test whose bucket ends at or below that bound ranks below
/// 50 others: only the rest, its ties included, are candidates, and only
/// their durations are read.
fn slowest(
    conn: &mut PgConnection,
    bounds: &Bounds,
    stats: Vec<(String, TestStats)>,
) -> QueryResult<Vec<(String, i64)>> {
    let mut timed: Vec<(String, Range<i64>, Vec<i32>)> = stats
        .into_iter()
        .filter_map(|(nodeid, test)| Some((nodeid, test.median_bucket?, test.tail_ms)))
        .collect();
    let wanted = MAX_TESTS as usize;
    if timed.len() > wanted {
        let mut lows: Vec<i64> = timed.iter().map(|(_, bucket, _)| bucket.start).collect();
        let (_, &mut bar, _) = lows.select_nth_unstable_by(wanted - 1, |a, b| b.cmp(a));
        timed.retain(|(_, bucket, _)| bucket.end > bar);
    }
    let nodeids: Vec<&String> = timed.iter().map(|(nodeid, _, _)| nodeid).collect();
    let rows: Vec<DurationsRow> = diesel::sql_query(
        "SELECT nodeid, string_agg(durations_ms, ''::bytea) AS durations_ms \
         FROM ( \
           SELECT nodeid, durations_ms FROM test_period_stats \
           WHERE nodeid = ANY($3) AND period = 'hour' AND starts_at >= $1 AND starts_at < $2 \
           UNION ALL \
           SELECT nodeid, durations_ms FROM test_period_stats \
           WHERE nodeid = ANY($3) AND period = 'day' AND starts_at >= $2 \
         ) AS parts \
         GROUP BY nodeid",
    )
    .bind::<Timestamptz, _>(bounds.first_hour)
    .bind::<Timestamptz, _>(bounds.first_day)
    .bind::<Array<Text>, _>(&nodeids)
    .load(conn)?;
    let mut periods: HashMap<String, Vec<u8>> = rows
        .into_iter()
        .map(|row| (row.nodeid, row.durations_ms))
        .collect();
    let mut slowest: Vec<(String, i64)> = timed
        .into_iter()
        .filter_map(|(nodeid, bucket, mut durations)| {
            if let Some(bytes) = periods.remove(&nodeid) {
                durations.extend(decode_durations(&bytes));
            }
            let median = i64::from(median(&mut durations)?);
            debug_assert!(bucket.contains(&median), "{nodeid}: {median} in {bucket:?}");
            Some((nodeid, median))
        })
        .collect();
    slowest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    slowest.truncate(wanted);
    Ok(slowest)
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
