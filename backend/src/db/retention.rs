//! Retention: old runs lose their details (log, cases, report, artifacts)
//! unless pinned; insights rows older than any window and webhook
//! deliveries that ended more than a month ago are dropped. In
//! bounded batches, each claimed with `SKIP LOCKED`, so that several
//! instances pruning at once share the work instead of colliding.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer};

/// The longest window insights read (`MAX_INSIGHT_DAYS`), plus the day a
/// daily row may reach back before it.
const INSIGHTS_KEEP_DAYS: i32 = shared::insights::MAX_INSIGHT_DAYS + 1;

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Removes the details of at most `batch` unpinned runs that finished more
/// than `days` days ago (by the database clock), oldest first; their rows
/// stay, with their summaries, marked `details_removed_at`. The runs
/// pruned.
pub fn prune_runs(conn: &mut PgConnection, days: i32, batch: i64) -> QueryResult<Vec<i64>> {
    conn.transaction(|conn| {
        let ids: Vec<i64> = diesel::sql_query(
            "SELECT id FROM test_runs \
             WHERE finished_at IS NOT NULL AND details_removed_at IS NULL AND NOT pinned \
               AND finished_at < now() - make_interval(days => $1) \
             ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind::<Integer, _>(days)
        .bind::<BigInt, _>(batch)
        .load::<Id>(conn)?
        .into_iter()
        .map(|row| row.id)
        .collect();
        if ids.is_empty() {
            return Ok(ids);
        }
        for statement in [
            "DELETE FROM run_log_chunks WHERE run_id = ANY($1)",
            "DELETE FROM run_cases WHERE run_id = ANY($1)",
            "DELETE FROM run_reports WHERE run_id = ANY($1)",
            "DELETE FROM run_case_attachments WHERE run_id = ANY($1)",
            "DELETE FROM run_artifacts WHERE run_id = ANY($1)",
            "UPDATE test_runs SET details_removed_at = now(), log_bytes = 0, case_count = 0 \
             WHERE id = ANY($1)",
        ] {
            diesel::sql_query(statement)
                .bind::<Array<BigInt>, _>(&ids)
                .execute(conn)?;
        }
        Ok(ids)
    })
}

/// How long a webhook delivery that ended (sent, or given up on) stays in
/// its webhook's log.
pub const DELIVERIES_KEEP_DAYS: i32 = 30;

/// Drops at most `batch` webhook deliveries that ended more than
/// [`DELIVERIES_KEEP_DAYS`] ago; how many.
pub fn prune_deliveries(conn: &mut PgConnection, batch: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM webhook_deliveries WHERE id = ANY(ARRAY( \
           SELECT id FROM webhook_deliveries \
           WHERE (delivered_at IS NOT NULL OR failed_at IS NOT NULL) \
             AND coalesce(delivered_at, failed_at) < now() - make_interval(days => $1) \
           LIMIT $2 FOR UPDATE SKIP LOCKED))",
    )
    .bind::<Integer, _>(DELIVERIES_KEEP_DAYS)
    .bind::<BigInt, _>(batch)
    .execute(conn)
}

/// Drops at most `batch` rows of each insights table that no window
/// reaches any more; how many in all.
pub fn prune_insights(conn: &mut PgConnection, batch: i64) -> QueryResult<usize> {
    let mut removed = 0;
    for statement in [
        "DELETE FROM test_period_stats WHERE ctid = ANY(ARRAY( \
           SELECT ctid FROM test_period_stats \
           WHERE period IN ('hour', 'day') AND starts_at < now() - make_interval(days => $1) \
           LIMIT $2 FOR UPDATE SKIP LOCKED))",
        "DELETE FROM test_flips WHERE id = ANY(ARRAY( \
           SELECT id FROM test_flips \
           WHERE flipped_at < now() - make_interval(days => $1) LIMIT $2 FOR UPDATE SKIP LOCKED))",
        "DELETE FROM test_last_results WHERE ctid = ANY(ARRAY( \
           SELECT ctid FROM test_last_results \
           WHERE finished_at < now() - make_interval(days => $1) LIMIT $2 FOR UPDATE SKIP LOCKED))",
    ] {
        removed += diesel::sql_query(statement)
            .bind::<Integer, _>(INSIGHTS_KEEP_DAYS)
            .bind::<BigInt, _>(batch)
            .execute(conn)?;
    }
    Ok(removed)
}

/// The database's size on disk, in bytes.
pub fn database_size(conn: &mut PgConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Size {
        #[diesel(sql_type = BigInt)]
        bytes: i64,
    }
    diesel::sql_query("SELECT pg_database_size(current_database()) AS bytes")
        .get_result::<Size>(conn)
        .map(|size| size.bytes)
}
