//! One live process per `INSTANCE_ID`: a session-level advisory lock on
//! the instance's name, held on a connection of its own for the process's
//! life. Two live processes under one name would take each other's leases
//! for their past life's and finish each other's runs; the second one is
//! refused at start-up instead. The lock goes with the session, so a dead
//! process (killed, crashed) frees it at once: its connection dies with it.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};

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

    /// Says which environments this instance serves, for the others to
    /// see while it lives: those with one of `runner_labels`, or all.
    pub fn register(
        &mut self,
        instance_id: &str,
        runner_labels: Option<&[String]>,
    ) -> Result<(), String> {
        diesel::sql_query(
            "INSERT INTO instances (instance_id, runner_labels, lock_key) VALUES ($1, $2, $3) \
             ON CONFLICT (instance_id) DO UPDATE \
             SET runner_labels = excluded.runner_labels, lock_key = excluded.lock_key, \
                 started_at = now()",
        )
        .bind::<Text, _>(instance_id)
        .bind::<Nullable<Array<Text>>, _>(runner_labels)
        .bind::<BigInt, _>(key_of(instance_id))
        .execute(&mut self.conn)
        .map(drop)
        .map_err(|e| format!("cannot register the instance: {e}"))
    }

    /// Whether the session, and so the lock, is still there.
    pub fn alive(&mut self) -> bool {
        self.conn.batch_execute("SELECT 1").is_ok()
    }
}

/// The names of the live instances, sorted.
pub fn live_names(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        instance_id: String,
    }
    let names: Vec<Name> =
        diesel::sql_query("SELECT instance_id FROM live_instances ORDER BY instance_id")
            .load(conn)?;
    Ok(names.into_iter().map(|n| n.instance_id).collect())
}

/// Tells the polled views that the live instances changed (one died), so
/// that why runs wait is told again.
pub fn live_set_changed(conn: &mut PgConnection, instance_id: &str) -> QueryResult<()> {
    diesel::sql_query("UPDATE instances SET lock_key = lock_key WHERE instance_id = $1")
        .bind::<Text, _>(instance_id)
        .execute(conn)?;
    Ok(())
}

/// What the live instances serve: environments with one of their labels,
/// or every environment (an instance without `RUNNER_LABELS`).
#[derive(Debug, Clone, Default)]
pub struct Served {
    everything: bool,
    labels: std::collections::HashSet<String>,
}

impl Served {
    /// As the live instances say now: an instance counts while it holds
    /// its lock, so a killed one stops counting at once.
    pub fn now(conn: &mut PgConnection) -> QueryResult<Served> {
        #[derive(QueryableByName)]
        struct Live {
            #[diesel(sql_type = Nullable<Array<Text>>)]
            runner_labels: Option<Vec<String>>,
        }
        let live: Vec<Live> =
            diesel::sql_query("SELECT runner_labels FROM live_instances").load(conn)?;
        let mut served = Served::default();
        for instance in live {
            match instance.runner_labels {
                None => served.everything = true,
                Some(labels) => served.labels.extend(labels),
            }
        }
        Ok(served)
    }

    /// Whether some live instance claims an environment with `labels`.
    pub fn serves(&self, labels: &[String]) -> bool {
        self.everything || labels.iter().any(|label| self.labels.contains(label))
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
