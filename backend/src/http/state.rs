//! What every request handler can reach.

use std::sync::Arc;

use super::conditional::ResponseCache;
use super::versions::StateVersions;
use crate::catalog::markers::MarkerCache;
use crate::catalog::TestsRoot;
use crate::config::Config;
use crate::db::PgPool;
use crate::exec::scheduler::Scheduler;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub tests_root: TestsRoot,
    pub scheduler: Arc<Scheduler>,
    pub responses: Arc<ResponseCache>,
    /// The state version the polled endpoints' ETags are made of.
    pub versions: Arc<StateVersions>,
    /// Turns for the expensive reads (insights, histories), one per
    /// connection they use: however many ask at once, only this many run,
    /// so that they cannot take every connection and the machine's time.
    pub heavy_reads: Arc<tokio::sync::Semaphore>,
    /// The markers pytest knows for the tests root, while it is unchanged.
    pub markers: Arc<MarkerCache>,
}

/// How many connections the expensive reads may hold at once: half the
/// pool, so that the polled endpoints always find one.
pub fn heavy_read_permits(pool_size: u32) -> u32 {
    (pool_size / 2).max(1)
}
