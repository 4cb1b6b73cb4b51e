//! Database access: the connection pool, migrations, and plain synchronous
//! query functions that take `&mut PgConnection` and return `QueryResult`s
//! of rows or shared types. Callers on async threads run them through
//! `http::blocking`.

pub mod artifacts;
pub mod audit;
pub mod environments;
pub mod estimates;
pub mod health;
pub mod histogram;
pub mod identity;
pub mod insights;
pub mod instance;
pub mod leases;
pub mod logs;
pub mod metrics;
pub mod models;
pub mod reports;
pub mod reservations;
pub mod retention;
pub mod run_groups;
pub mod runs;
pub mod schedules;
pub mod schema;
pub mod state;
pub mod webhooks;

use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type PgConn = PooledConnection<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// How one pool's connections behave. Every limit is set on the
/// connection itself, so that a stuck statement, a lock held by a frozen
/// instance or a partitioned network ends in bounded time instead of
/// holding row locks (and whoever waits for them) for hours.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_size: u32,
    /// How long a caller waits for a free connection.
    pub checkout: Duration,
    /// The longest a statement may run.
    pub statement_timeout: Duration,
    /// The longest a statement waits for a lock.
    pub lock_timeout: Duration,
    /// The longest a session may sit in an open transaction doing nothing
    /// (a frozen process): the server ends it and its locks go.
    pub idle_in_transaction: Duration,
}

pub fn build_pool(database_url: &str, settings: PoolSettings) -> PgPool {
    let manager = ConnectionManager::<PgConnection>::new(connection_url(database_url, &settings));
    Pool::builder()
        .max_size(settings.max_size)
        .min_idle(Some(1))
        .connection_timeout(settings.checkout)
        // Built lazily: the service starts (and answers 503) while the
        // database is down.
        .build_unchecked(manager)
}

/// The URL with the connection's limits, unless it sets them itself:
/// libpq waits for a dead host for minutes and TCP notices a dead peer
/// after two hours by default.
pub fn connection_url(url: &str, settings: &PoolSettings) -> String {
    let ms = |d: Duration| d.as_millis().max(1);
    let mut params = vec![
        ("connect_timeout", "2".to_string()),
        ("keepalives", "1".to_string()),
        ("keepalives_idle", "10".to_string()),
        ("keepalives_interval", "5".to_string()),
        ("keepalives_count", "3".to_string()),
        // Data unacknowledged this long (a partition mid-statement): the
        // connection is dropped.
        ("tcp_user_timeout", "15000".to_string()),
        // No JIT: it compiles a plan once the plan looks expensive, which
        // the short queries over big tables of insights do, and costs
        // them 15 ms and more each; no query here runs long enough to win
        // that back.
        (
            "options",
            format!(
                "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={} -c jit=off",
                ms(settings.statement_timeout),
                ms(settings.lock_timeout),
                ms(settings.idle_in_transaction)
            ),
        ),
    ];
    params.retain(|(name, _)| !url.contains(&format!("{name}=")));
    let mut url = url.to_string();
    for (name, value) in params {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(name);
        url.push('=');
        url.push_str(&percent_encode(&value));
    }
    url
}

/// A query value as a URL carries it.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Raw SQL that stays prepared on its connection, for the statements on
/// the path from a new run to its test process and from one run to the
/// next. `diesel::sql_query` has PostgreSQL parse and plan its text anew
/// on every call (a third of a millisecond for a claim); this is parsed
/// once per connection and then only bound and executed. The text must be
/// fixed: it is the cache's key.
pub fn kept_sql(sql: &'static str) -> KeptSql {
    KeptSql(sql)
}

#[derive(Debug, Clone, Copy)]
#[must_use = "queries run only when loaded or executed"]
pub struct KeptSql(&'static str);

/// [`KeptSql`] with its bind parameters, in order.
#[derive(Debug, Clone, Copy)]
#[must_use = "queries run only when loaded or executed"]
pub struct KeptBind<Q, V, ST> {
    query: Q,
    value: V,
    _type: std::marker::PhantomData<ST>,
}

impl KeptSql {
    pub fn bind<ST, V>(self, value: V) -> KeptBind<Self, V, ST> {
        KeptBind {
            query: self,
            value,
            _type: std::marker::PhantomData,
        }
    }
}

impl<Q, V, ST> KeptBind<Q, V, ST> {
    pub fn bind<ST2, V2>(self, value: V2) -> KeptBind<Self, V2, ST2> {
        KeptBind {
            query: self,
            value,
            _type: std::marker::PhantomData,
        }
    }
}

impl QueryFragment<Pg> for KeptSql {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(self.0);
        Ok(())
    }
}

impl<Q, V, ST> QueryFragment<Pg> for KeptBind<Q, V, ST>
where
    Q: QueryFragment<Pg>,
    V: ToSql<ST, Pg>,
    Pg: HasSqlType<ST>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_bind_param_value_only::<ST, V>(&self.value)
    }
}

// Keyed by their text, not by type: one type serves every statement.
impl QueryId for KeptSql {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, V, ST> QueryId for KeptBind<Q, V, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for KeptSql {
    type SqlType = Untyped;
}

impl<Q, V, ST> Query for KeptBind<Q, V, ST> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for KeptSql {}
impl<Q, V, ST, Conn> RunQueryDsl<Conn> for KeptBind<Q, V, ST> {}

pub fn run_migrations(conn: &mut PgConnection) -> Result<(), String> {
    conn.run_pending_migrations(MIGRATIONS)
        .map(|_| ())
        .map_err(|e| format!("migrations failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PoolSettings {
        PoolSettings {
            max_size: 2,
            checkout: Duration::from_millis(800),
            statement_timeout: Duration::from_secs(15),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction: Duration::from_secs(30),
        }
    }

    #[test]
    fn connections_get_their_limits_unless_the_url_sets_them() {
        let url = connection_url("postgres://u@h:5432/db", &settings());
        assert!(
            url.starts_with("postgres://u@h:5432/db?connect_timeout=2&"),
            "{url}"
        );
        assert!(url.contains("tcp_user_timeout=15000"), "{url}");
        assert!(
            url.contains("options=-c%20statement_timeout%3D15000%20-c%20lock_timeout%3D5000"),
            "{url}"
        );
        let own = connection_url(
            "postgres://h/db?connect_timeout=9&options=-c%20x%3D1",
            &settings(),
        );
        assert_eq!(own.matches("connect_timeout=").count(), 1, "{own}");
        assert_eq!(own.matches("options=").count(), 1, "{own}");
        assert!(own.contains("keepalives=1"));
        assert!(url.contains("jit%3Doff"), "{url}");
    }
}
