//! The state version that every conditional GET reads first (see
//! `db::state`), on one asynchronous connection of its own that carries
//! every request's read at once, pipelined: a poll answered 304 takes no
//! pooled connection, no blocking thread and no connection check.
//!
//! Each read is sent after its request arrived, so it sees every change
//! committed before: a client never gets an older state than one it has
//! already seen or made. While that connection is down (or being made),
//! the version is read on a pooled connection as before, and a new one is
//! made in the background, at most once a second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls, Statement};

use super::blocking::with_db;
use super::error::ApiError;
use crate::db::{self, PgPool};

/// How the connection shows in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "test-executor state versions";
/// Between two attempts to make the connection.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub struct StateVersions {
    database_url: String,
    /// The longest a read may take before the connection is given up.
    patience: Duration,
    link: Mutex<Link>,
}

#[derive(Default)]
struct Link {
    reader: Option<Arc<Reader>>,
    connecting: bool,
    last_attempt: Option<Instant>,
}

struct Reader {
    client: Client,
    statement: Statement,
}

impl StateVersions {
    /// Reads on `database_url`, giving up a read (and its connection)
    /// after `patience`. Connects on first use.
    pub fn new(database_url: &str, patience: Duration) -> Arc<StateVersions> {
        Arc::new(StateVersions {
            database_url: database_url.to_string(),
            patience,
            link: Mutex::default(),
        })
    }

    /// The current state version, read after this call began.
    pub async fn current(self: &Arc<Self>, pool: &PgPool) -> Result<i64, ApiError> {
        if let Some(reader) = self.reader() {
            let read = reader.client.query_one(&reader.statement, &[]);
            match tokio::time::timeout(self.patience, read).await {
                Ok(Ok(row)) => match row.try_get::<_, i64>(0) {
                    Ok(version) => return Ok(version),
                    Err(e) => tracing::warn!(error = %e, "unreadable state version"),
                },
                Ok(Err(e)) => tracing::warn!(error = %e, "state version connection failed"),
                Err(_) => tracing::warn!(
                    patience_ms = self.patience.as_millis() as u64,
                    "state version read took too long"
                ),
            }
            self.forget(&reader);
        }
        with_db(pool, |conn| Ok(db::state::version(conn)?)).await
    }

    /// The connection if it is up; else starts making one (unless an
    /// attempt is under way or was made less than a second ago).
    fn reader(self: &Arc<Self>) -> Option<Arc<Reader>> {
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reader) = &link.reader {
            if !reader.client.is_closed() {
                return Some(Arc::clone(reader));
            }
            link.reader = None;
        }
        let due = link
            .last_attempt
            .is_none_or(|at| at.elapsed() >= RECONNECT_AFTER);
        if !link.connecting && due {
            link.connecting = true;
            link.last_attempt = Some(Instant::now());
            let versions = Arc::clone(self);
            actix_web::rt::spawn(async move {
                let made = versions.connect().await;
                let mut link = versions.link.lock().unwrap_or_else(|p| p.into_inner());
                link.connecting = false;
                match made {
                    Ok(reader) => link.reader = Some(Arc::new(reader)),
                    Err(e) => tracing::warn!(error = %e,
                        "state versions are read on pooled connections meanwhile"),
                }
            });
        }
        None
    }

    fn forget(&self, failed: &Arc<Reader>) {
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        if link
            .reader
            .as_ref()
            .is_some_and(|reader| Arc::ptr_eq(reader, failed))
        {
            link.reader = None;
        }
    }

    async fn connect(&self) -> Result<Reader, String> {
        let mut config: tokio_postgres::Config =
            self.database_url.parse().map_err(|e| format!("{e}"))?;
        let ms = self.patience.as_millis().max(1);
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(2))
            .application_name(APPLICATION_NAME)
            .options(format!("-c statement_timeout={ms} -c jit=off"));
        let connecting = config.connect(NoTls);
        let (client, connection) = tokio::time::timeout(Duration::from_secs(5), connecting)
            .await
            .map_err(|_| "connecting took too long".to_string())?
            .map_err(|e| e.to_string())?;
        // Driven until it fails; the client then reports itself closed.
        actix_web::rt::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "state version connection ended");
            }
        });
        let statement = client
            .prepare(db::state::VERSION_SQL)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Reader { client, statement })
    }
}
