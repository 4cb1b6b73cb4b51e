//! One live process per `INSTANCE_ID`: a session-level advisory lock on
//! the instance's name, held on a connection of its own for the process's
//! life. Two live processes under one name would take each other's leases
//! for their past life's and finish each other's runs; the second one is
//! refused at start-up instead. The lock goes with the session, so a dead
//! process (killed, crashed) frees it at once: its connection dies with it.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use std::time::Duration;

use crate::hash::fnv1a;

/// The lock of one instance name, held while this connection lives.
pub struct InstanceLock {
    conn: PgConnection,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// The advisory lock key of an instance name; the prefix keeps it apart
/// from any other advisory lock in the database.
pub fn key_of(instance_id: &str) -> i64 {
    let name = format!("test-executor instance {instance_id}");
    fnv1a(name.bytes()) as i64
}

impl InstanceLock {
    /// Takes the lock of `instance_id` on a new connection: `Ok(None)` if
    /// another live session holds it.
    pub fn try_take(database_url: &str, instance_id: &str) -> Result<Option<InstanceLock>, String> {
        let limits = super::PoolSettings {
            max_size: 1,
            checkout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction: Duration::from_secs(30),
        };
        let mut conn = PgConnection::establish(&super::connection_url(database_url, &limits))
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        // The server notices a vanished client (its machine died, the
        // network broke) within about half a minute instead of the system's
        // two hours, so the lock does not outlive its holder for long.
        // Ignored on Unix sockets; optional anyway.
        let _ = conn.batch_execute(
            "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; \
             SET tcp_keepalives_count = 3",
        );
        let key = key_of(instance_id);
        let Locked { locked } = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<BigInt, _>(key)
            .get_result(&mut conn)
            .map_err(|e| format!("cannot take the instance lock: {e}"))?;
        Ok(locked.then_some(InstanceLock { conn }))
    }

    /// Whether the session, and so the lock, is still there.
    pub fn alive(&mut self) -> bool {
        self.conn.batch_execute("SELECT 1").is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_have_distinct_stable_keys() {
        assert_eq!(key_of("backend-1"), key_of("backend-1"));
        assert_ne!(key_of("backend-1"), key_of("backend-2"));
    }
}
