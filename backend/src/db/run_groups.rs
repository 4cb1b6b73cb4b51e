//! Run groups: the group row, its shards' runs, and how long tests took
//! lately, to balance the shards.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Text};
use std::collections::HashMap;

use super::models::{NewRunRow, RunRow};
use super::schema::{run_groups, test_runs};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = run_groups, check_for_backend(diesel::pg::Pg))]
pub struct RunGroupRow {
    pub id: i64,
    pub username: String,
    pub environment_label: String,
    pub paths: serde_json::Value,
    pub shards_requested: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = run_groups)]
pub struct NewRunGroupRow {
    pub username: String,
    pub environment_label: String,
    pub paths: serde_json::Value,
    pub shards_requested: i32,
}

/// Inserts the group and one queued run per shard, in shard order. The
/// caller holds the pool's lock.
pub fn insert(
    conn: &mut PgConnection,
    group: &NewRunGroupRow,
    shards: Vec<NewRunRow>,
) -> QueryResult<(RunGroupRow, Vec<RunRow>)> {
    let row: RunGroupRow = diesel::insert_into(run_groups::table)
        .values(group)
        .returning(RunGroupRow::as_returning())
        .get_result(conn)?;
    let mut runs = Vec::with_capacity(shards.len());
    for (index, mut shard) in shards.into_iter().enumerate() {
        shard.run_group_id = Some(row.id);
        shard.shard = Some(index as i32 + 1);
        runs.push(super::runs::insert(conn, &shard)?);
    }
    Ok((row, runs))
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<RunGroupRow>> {
    run_groups::table
        .find(id)
        .select(RunGroupRow::as_select())
        .first(conn)
        .optional()
}

/// The newest groups, newest first.
pub fn list(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<RunGroupRow>> {
    run_groups::table
        .select(RunGroupRow::as_select())
        .order(run_groups::id.desc())
        .limit(limit)
        .load(conn)
}

/// Each shard's latest run (a shard whose instance died was run again),
/// in shard order.
pub fn latest_runs(conn: &mut PgConnection, group_id: i64) -> QueryResult<Vec<RunRow>> {
    let runs: Vec<RunRow> = test_runs::table
        .filter(test_runs::run_group_id.eq(group_id))
        .select(RunRow::as_select())
        .order((test_runs::shard, test_runs::id.desc()))
        .load(conn)?;
    let mut latest: Vec<RunRow> = Vec::new();
    for run in runs {
        if latest.last().is_none_or(|kept| kept.shard != run.shard) {
            latest.push(run);
        }
    }
    Ok(latest)
}

/// How long each of `units` (test files, or node ids) took lately: for
/// each test in it, the median of its durations over the last 30 days,
/// added up. Units without history are left out.
pub fn recent_durations(
    conn: &mut PgConnection,
    units: &[String],
) -> QueryResult<HashMap<String, u64>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        nodeid: String,
        #[diesel(sql_type = Bytea)]
        durations_ms: Vec<u8>,
    }
    let files: Vec<&str> = units
        .iter()
        .map(|unit| unit.split("::").next().unwrap_or(unit))
        .collect();
    if files.is_empty() {
        return Ok(HashMap::new());
    }
    // One pass over the window's daily rows: every test, every day.
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT nodeid, durations_ms FROM test_period_stats \
         WHERE period = 'day' AND starts_at >= date_trunc('day', now(), 'UTC') - interval '30 days' \
           AND split_part(nodeid, '::', 1) = ANY ($1)",
    )
    .bind::<Array<Text>, _>(&files)
    .load(conn)?;
    let mut by_test: HashMap<String, Vec<i32>> = HashMap::new();
    for row in rows {
        by_test.entry(row.nodeid).or_default().extend(
            row.durations_ms
                .chunks_exact(4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    let mut units_of_file: HashMap<&str, Vec<&String>> = HashMap::new();
    for (unit, file) in units.iter().zip(&files) {
        units_of_file.entry(file).or_default().push(unit);
    }
    let mut totals: HashMap<String, u64> = HashMap::new();
    for (nodeid, mut durations) in by_test {
        let file = nodeid.split("::").next().unwrap_or(&nodeid);
        let unit = units_of_file
            .get(file)
            .and_then(|candidates| candidates.iter().find(|unit| contains(unit, &nodeid)));
        let Some(unit) = unit else {
            continue;
        };
        durations.sort_unstable();
        let Some(median) = durations.get(durations.len() / 2) else {
            continue;
        };
        *totals.entry((*unit).clone()).or_default() += u64::try_from(*median).unwrap_or(0);
    }
    Ok(totals)
}

/// Whether the test `nodeid` is in `unit`: the unit itself, a test of the
/// file or class it names, or a parameter of the test it names.
fn contains(unit: &str, nodeid: &str) -> bool {
    match nodeid.strip_prefix(unit) {
        Some(rest) => rest.is_empty() || rest.starts_with("::") || rest.starts_with('['),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::contains;

    #[test]
    fn a_unit_holds_its_tests_and_their_parameters_only() {
        assert!(contains("a/test_x.py", "a/test_x.py::test_one"));
        assert!(contains("a/test_x.py::test_p", "a/test_x.py::test_p[1-2]"));
        assert!(contains("a/test_x.py::TestC", "a/test_x.py::TestC::test_m"));
        assert!(!contains("a/test_x.py", "a/test_x.py2::test_one"));
        assert!(!contains("a/test_x.py::test_p", "a/test_x.py::test_pq"));
    }
}
