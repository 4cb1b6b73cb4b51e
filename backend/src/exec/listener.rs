//! Hears what every instance does to the shared database, through
//! PostgreSQL's `LISTEN test_executor` (see the notifications migrations):
//! a new run or a freed environment makes the scheduler claim on that
//! environment at once, other changes wake it for a full sweep, cancels
//! reach the run they are about, finishes reach whoever waits for them. One
//! connection of its own, outside the pool; while it is down, the
//! scheduler's safety tick finds the work instead.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use super::scheduler::Scheduler;

/// The channel every instance listens on.
pub const CHANNEL: &str = "test_executor";
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a notification asks of this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Look for work everywhere: a pool's run was queued, a reservation or
    /// maintenance changed.
    Work,
    /// Look for work on this environment: a run was queued for it, or its
    /// busy row went.
    WorkOn(i32),
    Finished(i64),
    Cancel(i64),
}

impl Notice {
    pub fn parse(payload: &str) -> Option<Notice> {
        let mut words = payload.split_whitespace();
        let kind = words.next()?;
        let id = words.next();
        match (kind, id) {
            ("queued" | "released", None) => Some(Notice::Work),
            ("queued" | "released", Some(id)) => Some(match id.parse() {
                Ok(environment_id) => Notice::WorkOn(environment_id),
                Err(_) => Notice::Work,
            }),
            (_, None) => None,
            ("finished", Some(id)) => id.parse().ok().map(Notice::Finished),
            ("cancel", Some(id)) => id.parse().ok().map(Notice::Cancel),
            _ => None,
        }
    }
}

/// Listens until the service stops, reconnecting after any failure.
pub async fn listen(database_url: String, scheduler: Arc<Scheduler>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match listen_once(&database_url, &scheduler).await {
            Ok(()) => backoff = Duration::from_millis(250),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "not listening to other instances; the scheduler's tick covers meanwhile");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: LISTEN, then hand on every notification until
/// the connection ends.
async fn listen_once(database_url: &str, scheduler: &Arc<Scheduler>) -> Result<(), String> {
    let mut config: tokio_postgres::Config = database_url.parse().map_err(|e| format!("{e}"))?;
    // A partitioned database is noticed within a minute, not two hours.
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5));
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let (notices_tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be driven for the client's queries to complete;
    // the notifications come out of it.
    let driver = actix_web::rt::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    if notices_tx.send(notification.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return e.to_string(),
            }
        }
        "the connection closed".to_string()
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("listening to other instances");
    // Whatever happened while not listening.
    scheduler.wake();
    while let Some(payload) = notices.recv().await {
        match Notice::parse(&payload) {
            Some(Notice::Work) => scheduler.wake(),
            Some(Notice::WorkOn(environment_id)) => scheduler.wake_for(environment_id),
            // What the end of a run frees comes as `released <id>`.
            Some(Notice::Finished(id)) => scheduler.heard_finished(id),
            Some(Notice::Cancel(id)) => scheduler.cancel_local(id),
            None => tracing::debug!(%payload, "unknown notification"),
        }
    }
    let why = driver.await.unwrap_or_else(|e| e.to_string());
    drop(client);
    Err(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_read_word_by_word() {
        assert_eq!(Notice::parse("queued"), Some(Notice::Work));
        assert_eq!(Notice::parse("released"), Some(Notice::Work));
        assert_eq!(Notice::parse("queued 12"), Some(Notice::WorkOn(12)));
        assert_eq!(Notice::parse("released 7"), Some(Notice::WorkOn(7)));
        assert_eq!(Notice::parse("queued pool"), Some(Notice::Work));
        assert_eq!(Notice::parse("finished 42"), Some(Notice::Finished(42)));
        assert_eq!(Notice::parse("cancel 7"), Some(Notice::Cancel(7)));
        assert_eq!(Notice::parse("cancel x"), None);
        assert_eq!(Notice::parse(""), None);
    }
}
