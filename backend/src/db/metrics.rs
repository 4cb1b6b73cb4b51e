//! The figures `/metrics` reads from the database at each scrape: a few
//! aggregate queries over indexed columns, whatever the number of pollers.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};

/// Figures read from the database at scrape time.
#[derive(Debug, Default)]
pub struct DatabaseFigures {
    pub runs_by_status: Vec<(String, i64)>,
    /// Queued runs of each environment, every environment listed.
    pub queued_by_environment: Vec<(i32, i64)>,
    pub busy_environments: i64,
    pub environments: i64,
    /// `pg_database_size` of the service's database.
    pub database_bytes: i64,
    /// Bytes of artifacts kept, all runs.
    pub artifact_bytes: i64,
}

#[derive(QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    runs: i64,
}

#[derive(QueryableByName)]
struct QueueDepth {
    #[diesel(sql_type = Integer)]
    environment_id: i32,
    #[diesel(sql_type = BigInt)]
    queued: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

pub fn figures(conn: &mut PgConnection) -> QueryResult<DatabaseFigures> {
    // An index-only scan of test_runs_by_status once finished runs are
    // vacuumed: proportional to the number of runs, a few ms per 100,000.
    let runs_by_status: Vec<StatusCount> =
        diesel::sql_query("SELECT status, count(*) AS runs FROM test_runs GROUP BY status")
            .load(conn)?;
    // The partial index test_runs_queue holds only queued runs.
    let queued: Vec<QueueDepth> = diesel::sql_query(
        "SELECT e.id AS environment_id, count(q.id) AS queued FROM environments e \
         LEFT JOIN test_runs q ON q.environment_id = e.id AND q.status = 'queued' \
         GROUP BY e.id ORDER BY e.id",
    )
    .load(conn)?;
    let busy: Count =
        diesel::sql_query("SELECT count(*) AS count FROM environment_locks").get_result(conn)?;
    let artifact_bytes: Count =
        diesel::sql_query("SELECT coalesce(sum(size), 0)::bigint AS count FROM run_artifacts")
            .get_result(conn)?;
    Ok(DatabaseFigures {
        runs_by_status: runs_by_status
            .into_iter()
            .map(|c| (c.status, c.runs))
            .collect(),
        environments: queued.len() as i64,
        queued_by_environment: queued
            .into_iter()
            .map(|q| (q.environment_id, q.queued))
            .collect(),
        busy_environments: busy.count,
        database_bytes: super::retention::database_size(conn)?,
        artifact_bytes: artifact_bytes.count,
    })
}
