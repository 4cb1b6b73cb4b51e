//! Test history and insights across runs: per-test outcomes over time,
//! flaky tests, failing tests and slow tests.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use shared::{CaseOutcome, FailingTest, FlakyTest, HistoryItem, Insights, SlowTest};

use crate::error::ApiError;

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
    outcome: String,
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
            outcome: row.outcome.parse().unwrap_or(CaseOutcome::Error),
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
) -> Result<Vec<HistoryItem>, ApiError> {
    let rows: Vec<HistoryRow> = match of {
        HistoryOf::Test(nodeid) => diesel::sql_query(
            "SELECT c.run_id, r.environment_id, c.nodeid, c.outcome, c.duration_ms, r.finished_at \
             FROM run_cases c JOIN test_runs r ON r.id = c.run_id \
             WHERE c.nodeid = $1 ORDER BY c.run_id DESC, c.id DESC LIMIT $2",
        )
        .bind::<Text, _>(nodeid)
        .bind::<BigInt, _>(limit)
        .load(conn)?,
        HistoryOf::File(path) => diesel::sql_query(
            "SELECT run_id, environment_id, nodeid, outcome, duration_ms, finished_at FROM ( \
               SELECT c.run_id, r.environment_id, c.nodeid, c.outcome, c.duration_ms, r.finished_at, \
                      row_number() OVER (PARTITION BY c.nodeid ORDER BY c.run_id DESC, c.id DESC) AS n \
               FROM run_cases c JOIN test_runs r ON r.id = c.run_id \
               WHERE c.nodeid = $1 OR c.nodeid LIKE $2 \
             ) recent WHERE n <= $3 ORDER BY run_id DESC, nodeid",
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
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_flip_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Array<BigInt>)]
    run_ids: Vec<i64>,
}

#[derive(QueryableByName)]
struct FailingRow {
    #[diesel(sql_type = Text)]
    nodeid: String,
    #[diesel(sql_type = BigInt)]
    failures: i64,
    #[diesel(sql_type = Array<BigInt>)]
    run_ids: Vec<i64>,
}

#[derive(QueryableByName)]
struct SlowRow {
    #[diesel(sql_type = Text)]
    nodeid: String,
    #[diesel(sql_type = BigInt)]
    median_ms: i64,
    #[diesel(sql_type = Array<BigInt>)]
    run_ids: Vec<i64>,
}

/// Flaky, failing and slowest tests among the runs finished in the last
/// `days` days.
///
/// A test is flaky when, on one environment, its outcome changed between
/// passed and failed (an error counts as failed) from one run to the next;
/// `flips` counts those changes over all environments. Each figure lists
/// at most the 50 newest runs behind it.
pub fn insights(conn: &mut PgConnection, days: i32) -> Result<Insights, ApiError> {
    let flaky: Vec<FlakyRow> = diesel::sql_query(
        "WITH recent AS ( \
           SELECT c.nodeid, r.environment_id, c.run_id, r.finished_at, \
                  (c.outcome = 'passed') AS passed \
           FROM run_cases c JOIN test_runs r ON r.id = c.run_id \
           WHERE r.finished_at >= now() - make_interval(days => $1) \
             AND c.outcome IN ('passed', 'failed', 'error') \
         ), steps AS ( \
           SELECT *, lag(passed) OVER (PARTITION BY nodeid, environment_id ORDER BY run_id) AS before \
           FROM recent \
         ) \
         SELECT nodeid, \
                count(*) FILTER (WHERE before IS DISTINCT FROM passed AND before IS NOT NULL) AS flips, \
                max(finished_at) FILTER (WHERE before IS DISTINCT FROM passed AND before IS NOT NULL) AS last_flip_at, \
                (array_agg(run_id ORDER BY run_id DESC))[1:50] AS run_ids \
         FROM steps GROUP BY nodeid \
         HAVING count(*) FILTER (WHERE before IS DISTINCT FROM passed AND before IS NOT NULL) > 0 \
         ORDER BY flips DESC, last_flip_at DESC, nodeid LIMIT $2",
    )
    .bind::<Integer, _>(days)
    .bind::<BigInt, _>(MAX_TESTS)
    .load(conn)?;
    let failing: Vec<FailingRow> = diesel::sql_query(
        "SELECT c.nodeid, count(*) AS failures, \
                (array_agg(c.run_id ORDER BY c.run_id DESC))[1:50] AS run_ids \
         FROM run_cases c JOIN test_runs r ON r.id = c.run_id \
         WHERE r.finished_at >= now() - make_interval(days => $1) \
           AND c.outcome IN ('failed', 'error') \
         GROUP BY c.nodeid ORDER BY failures DESC, c.nodeid LIMIT $2",
    )
    .bind::<Integer, _>(days)
    .bind::<BigInt, _>(MAX_TESTS)
    .load(conn)?;
    let slowest: Vec<SlowRow> = diesel::sql_query(
        "SELECT c.nodeid, \
                percentile_disc(0.5) WITHIN GROUP (ORDER BY c.duration_ms) AS median_ms, \
                (array_agg(c.run_id ORDER BY c.run_id DESC))[1:50] AS run_ids \
         FROM run_cases c JOIN test_runs r ON r.id = c.run_id \
         WHERE r.finished_at >= now() - make_interval(days => $1) \
           AND c.outcome <> 'skipped' \
         GROUP BY c.nodeid ORDER BY median_ms DESC, c.nodeid LIMIT $2",
    )
    .bind::<Integer, _>(days)
    .bind::<BigInt, _>(MAX_TESTS)
    .load(conn)?;
    Ok(Insights {
        flaky: flaky
            .into_iter()
            .map(|r| FlakyTest {
                nodeid: r.nodeid,
                flips: r.flips,
                last_flip_at: r.last_flip_at,
                run_ids: r.run_ids,
            })
            .collect(),
        failing: failing
            .into_iter()
            .map(|r| FailingTest {
                nodeid: r.nodeid,
                failures: r.failures,
                run_ids: r.run_ids,
            })
            .collect(),
        slowest: slowest
            .into_iter()
            .map(|r| SlowTest {
                nodeid: r.nodeid,
                median_ms: r.median_ms,
                run_ids: r.run_ids,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
    }
}
