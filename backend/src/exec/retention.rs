//! The periodic clean-up: runs past `RETENTION_DAYS` lose their details
//! (unless pinned), and insights rows older than any window and webhook
//! deliveries that ended more than a month ago go. Cheap when
//! there is nothing to do (index range scans), so it runs often. Every
//! instance runs it; the batches' `SKIP LOCKED` claims share the work.

use std::time::Duration;

use crate::db::{self, PgPool};

/// Runs pruned per transaction: short transactions, few locks held.
pub const RUN_BATCH: i64 = 200;
/// Insights rows removed per table and transaction.
pub const INSIGHTS_BATCH: i64 = 5000;
/// Batches per pass at most, so that one pass never runs for long; what is
/// left waits for the next.
const MAX_BATCHES: usize = 50;
/// How often the insights tables and webhook deliveries are pruned (and at
/// start-up): rows leave their window by the day, and a pass reads more
/// than the runs' one.
const INSIGHTS_EVERY: Duration = Duration::from_secs(3600);

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub runs: usize,
    pub insights_rows: usize,
    pub deliveries: usize,
}

/// One pass: the details of runs finished more than `retention_days` ago
/// (none when `None`), then, with `insights`, insights rows past their
/// longest window and webhook deliveries past theirs.
pub fn prune_once(
    conn: &mut diesel::PgConnection,
    retention_days: Option<u32>,
    insights: bool,
) -> diesel::QueryResult<Pruned> {
    let mut pruned = Pruned::default();
    if let Some(days) = retention_days {
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        for _ in 0..MAX_BATCHES {
            let batch = db::retention::prune_runs(conn, days, RUN_BATCH)?;
            pruned.runs += batch.len();
            if (batch.len() as i64) < RUN_BATCH {
                break;
            }
        }
    }
    for _ in 0..if insights { MAX_BATCHES } else { 0 } {
        let removed = db::retention::prune_insights(conn, INSIGHTS_BATCH)?;
        pruned.insights_rows += removed;
        if removed == 0 {
            break;
        }
    }
    for _ in 0..if insights { MAX_BATCHES } else { 0 } {
        let removed = db::retention::prune_deliveries(conn, INSIGHTS_BATCH)?;
        pruned.deliveries += removed;
        if (removed as i64) < INSIGHTS_BATCH {
            break;
        }
    }
    Ok(pruned)
}

/// Prunes runs every `interval` and insights every hour, both from
/// start-up on, until the service stops.
pub async fn run(pool: PgPool, retention_days: Option<u32>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut insights_pruned: Option<std::time::Instant> = None;
    loop {
        ticks.tick().await;
        let insights = insights_pruned.is_none_or(|at| at.elapsed() >= INSIGHTS_EVERY);
        if insights {
            insights_pruned = Some(std::time::Instant::now());
        }
        let pool = pool.clone();
        let pass = actix_web::rt::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            prune_once(&mut conn, retention_days, insights).map_err(|e| e.to_string())
        })
        .await;
        match pass {
            Ok(Ok(pruned)) if pruned != Pruned::default() => {
                tracing::info!(
                    runs = pruned.runs,
                    insights_rows = pruned.insights_rows,
                    deliveries = pruned.deliveries,
                    "retention: old details removed"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "retention pass failed; retrying later"),
            Err(e) => tracing::warn!(error = %e, "retention pass panicked"),
        }
    }
}
