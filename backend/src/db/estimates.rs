//! What estimates are made of: the queues of environments as they stand,
//! and how long runs like the ones in them took lately.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Jsonb, Nullable, Text, Timestamptz};
use std::collections::HashMap;

/// One thing in an environment's queue, in FIFO order.
#[derive(Debug, Clone, QueryableByName)]
pub struct QueueItem {
    #[diesel(sql_type = Integer)]
    pub environment_id: i32,
    /// `running`, `hold`, `run` (queued) or `reservation` (waiting).
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub position: i64,
    /// A run's paths, to look up how long runs like it took.
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub paths: Option<serde_json::Value>,
    /// When a running run started, or when a hold ends.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub at: Option<DateTime<Utc>>,
    /// A waiting reservation's length.
    #[diesel(sql_type = Nullable<Integer>)]
    pub minutes: Option<i32>,
    /// A pool's run (kind `pool`): its label; its environment is 0.
    #[diesel(sql_type = Nullable<Text>)]
    pub label: Option<String>,
}

/// The queues of `environments`: the run holding each, its hold, then
/// its queued runs and waiting reservations in order.
pub fn queues(conn: &mut PgConnection, environments: &[i32]) -> QueryResult<Vec<QueueItem>> {
    diesel::sql_query(
        "SELECT l.environment_id, 'running' AS kind, r.id, 0::bigint AS position, r.paths, \
                r.started_at AS at, NULL::int AS minutes, NULL::text AS label \
         FROM environment_locks l JOIN test_runs r ON r.id = l.run_id \
         WHERE l.environment_id = ANY($1) \
         UNION ALL \
         SELECT environment_id, 'hold', id, 0, NULL, expires_at, NULL, NULL FROM reservations \
         WHERE environment_id = ANY($1) AND state = 'active' AND expires_at > now() \
         UNION ALL \
         SELECT environment_id, 'run', id, id, paths, NULL, NULL, NULL FROM test_runs \
         WHERE environment_id = ANY($1) AND status = 'queued' \
         UNION ALL \
         SELECT environment_id, 'reservation', id, queue_order, NULL, NULL, minutes, NULL \
         FROM reservations \
         WHERE environment_id = ANY($1) AND state = 'waiting' \
         ORDER BY 1, 4",
    )
    .bind::<Array<Integer>, _>(environments)
    .load(conn)
}

/// The queued runs of the pools `labels`, in FIFO order.
pub fn pool_queues(conn: &mut PgConnection, labels: &[String]) -> QueryResult<Vec<QueueItem>> {
    if labels.is_empty() {
        return Ok(Vec::new());
    }
    diesel::sql_query(
        "SELECT 0 AS environment_id, 'pool' AS kind, id, id AS position, paths, \
                NULL::timestamptz AS at, NULL::int AS minutes, environment_label AS label \
         FROM test_runs \
         WHERE status = 'queued' AND environment_id IS NULL AND environment_label = ANY ($1) \
         ORDER BY id",
    )
    .bind::<Array<Text>, _>(labels)
    .load(conn)
}

/// The labels of the pools with queued runs.
pub fn busy_pools(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Label {
        #[diesel(sql_type = Text)]
        label: String,
    }
    let rows: Vec<Label> = diesel::sql_query(
        "SELECT DISTINCT environment_label AS label FROM test_runs \
         WHERE status = 'queued' AND environment_id IS NULL AND environment_label IS NOT NULL",
    )
    .load(conn)?;
    Ok(rows.into_iter().map(|r| r.label).collect())
}

#[derive(QueryableByName)]
struct Typical {
    #[diesel(sql_type = Nullable<Double>)]
    median_ms: Option<f64>,
}

/// The median duration of the last 20 finished runs of each set of paths,
/// in the order given; `None` where there were none.
pub fn typical_by_paths(
    conn: &mut PgConnection,
    paths: &[serde_json::Value],
) -> QueryResult<Vec<Option<f64>>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Typical> = diesel::sql_query(
        "SELECT ( \
           SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d) FROM ( \
             SELECT extract(epoch FROM r.finished_at - r.started_at) * 1000 AS d \
             FROM test_runs r \
             WHERE md5(r.paths::text) = md5(p.paths::text) AND r.paths = p.paths \
               AND r.status IN ('success', 'failed') \
             ORDER BY r.id DESC LIMIT 20) recent \
         )::float8 AS median_ms \
         FROM unnest($1::jsonb[]) WITH ORDINALITY AS p (paths, n) ORDER BY p.n",
    )
    .bind::<Array<Jsonb>, _>(paths)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| r.median_ms).collect())
}

/// The median duration of the last 50 finished runs, on each of
/// `environments` and (key 0) on any.
pub fn typical_by_environment(
    conn: &mut PgConnection,
    environments: &[i32],
) -> QueryResult<HashMap<i32, f64>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Integer)]
        environment_id: i32,
        #[diesel(sql_type = Nullable<Double>)]
        median_ms: Option<f64>,
    }
    // Two index walks: by environment, and the newest runs of all.
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT e.id AS environment_id, ( \
           SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d) FROM ( \
             SELECT extract(epoch FROM r.finished_at - r.started_at) * 1000 AS d \
             FROM test_runs r \
             WHERE r.environment_id = e.id AND r.status IN ('success', 'failed') \
             ORDER BY r.id DESC LIMIT 50) recent \
         )::float8 AS median_ms \
         FROM unnest($1::int[]) AS e (id) \
         UNION ALL \
         SELECT 0, ( \
           SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d) FROM ( \
             SELECT extract(epoch FROM r.finished_at - r.started_at) * 1000 AS d \
             FROM test_runs r WHERE r.status IN ('success', 'failed') \
             ORDER BY r.id DESC LIMIT 50) recent \
         )::float8",
    )
    .bind::<Array<Integer>, _>(environments)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.environment_id, r.median_ms?)))
        .collect())
}
