//! Database access: the connection pool, migrations, and plain synchronous
//! query functions that take `&mut PgConnection` and return `QueryResult`s
//! of rows or shared types. Callers on async threads run them through
//! `http::blocking`.

pub mod environments;
pub mod insights;
pub mod instance;
pub mod leases;
pub mod logs;
pub mod metrics;
pub mod models;
pub mod reports;
pub mod runs;
pub mod schema;
pub mod state;

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type PgConn = PooledConnection<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// How long a request waits for a connection before answering 503.
const CHECKOUT_TIMEOUT: Duration = Duration::from_millis(800);

pub fn build_pool(database_url: &str, max_size: u32) -> PgPool {
    let manager = ConnectionManager::<PgConnection>::new(with_connect_timeout(database_url));
    Pool::builder()
        .max_size(max_size)
        .min_idle(Some(1))
        .connection_timeout(CHECKOUT_TIMEOUT)
        // Built lazily: the service starts (and answers 503) while the
        // database is down.
        .build_unchecked(manager)
}

/// libpq waits for a dead host for minutes by default; bound it.
pub(crate) fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout=2")
}

pub fn run_migrations(conn: &mut PgConnection) -> Result<(), String> {
    conn.run_pending_migrations(MIGRATIONS)
        .map(|_| ())
        .map_err(|e| format!("migrations failed: {e}"))
}
