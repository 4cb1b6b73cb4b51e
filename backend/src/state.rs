//! What every request handler can reach.

use std::sync::Arc;

use crate::catalog::TestsRoot;
use crate::config::Config;
use crate::db::PgPool;
use crate::routes::etag::ResponseCache;
use crate::scheduler::Scheduler;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub tests_root: TestsRoot,
    pub scheduler: Arc<Scheduler>,
    pub responses: Arc<ResponseCache>,
}
