//! Queries about runs: insert, read, list, cancel, and their cases.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use shared::{CaseOutcome, CaseResult, Run, RunListQuery, RunStatus};
use std::collections::HashMap;

use super::models::{CaseRow, NewRunRow, RunRow};
use super::schema::{run_cases, test_runs};

/// Taken shared by every run created and exclusively by the deletion of a
/// test file, across all instances: a file is never deleted between a new
/// run's check that its paths exist and its commit.
const CATALOG_LOCK: i64 = 0x7465_7374_5f66_696c;

/// Runs `f` in a transaction that holds the catalog lock from its start:
/// shared while a run is created, exclusive while a test file is deleted.
/// `BEGIN` and the lock go in one round trip; `f`'s error rolls back.
/// Inside a transaction already (a schedule's fire), in a savepoint.
pub fn in_catalog_transaction<T, E, F>(
    conn: &mut PgConnection,
    exclusive: bool,
    f: F,
) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
    let function = if exclusive {
        "pg_advisory_xact_lock"
    } else {
        "pg_advisory_xact_lock_shared"
    };
    let take_lock = format!("SELECT {function}({CATALOG_LOCK})");
    let nested = !matches!(
        AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth(),
        Ok(None)
    );
    if nested {
        return conn.transaction(|conn| {
            conn.batch_execute(&take_lock)?;
            f(conn)
        });
    }
    if let Err(e) =
        AnsiTransactionManager::begin_transaction_sql(conn, &format!("BEGIN; {take_lock}"))
    {
        // The BEGIN may have gone through before the lock failed.
        let _ = conn.batch_execute("ROLLBACK");
        return Err(e.into());
    }
    match f(conn) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            // A connection whose rollback failed is marked broken, and the
            // pool drops it; the error that matters is `f`'s.
            let _ = AnsiTransactionManager::rollback_transaction(conn);
            Err(e)
        }
    }
}

/// Holds the lock of pool `label` until the transaction ends: runs of one
/// pool are inserted one at a time, so they commit in id order and the
/// pool's queue stays FIFO by id.
pub fn lock_pool(conn: &mut PgConnection, label: &str) -> QueryResult<()> {
    let key = crate::hash::fnv1a(format!("test-executor pool {label}").bytes()) as i64;
    super::kept_sql("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(key)
        .execute(conn)?;
    Ok(())
}

/// Inserts a queued run. The caller holds its environment's row lock (see
/// `environments::lock`), so that runs of one environment commit in id
/// order and the queue stays FIFO by id even when many are created at once.
pub fn insert(conn: &mut PgConnection, new: &NewRunRow) -> QueryResult<RunRow> {
    diesel::insert_into(test_runs::table)
        .values(new)
        .returning(RunRow::as_returning())
        .get_result(conn)
}

/// Runs waiting in any queue (the partial queue index holds only them).
pub fn queued_count(conn: &mut PgConnection) -> QueryResult<i64> {
    test_runs::table
        .filter(test_runs::status.eq(RunStatus::Queued))
        .count()
        .get_result(conn)
}

/// The oldest run queued on `environment_id` (its own queue, not a
/// pool's): the one its next hand-off starts, unless something changes
/// first. Its id and paths.
pub fn first_queued_on(
    conn: &mut PgConnection,
    environment_id: i32,
) -> QueryResult<Option<(i64, Vec<String>)>> {
    let first: Option<(i64, serde_json::Value)> = test_runs::table
        .filter(test_runs::environment_id.eq(environment_id))
        .filter(test_runs::status.eq(RunStatus::Queued))
        .order(test_runs::id)
        .select((test_runs::id, test_runs::paths))
        .first(conn)
        .optional()?;
    Ok(first.map(|(id, paths)| (id, RunRow::paths_of(paths))))
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<RunRow>> {
    test_runs::table
        .find(id)
        .select(RunRow::as_select())
        .first(conn)
        .optional()
}

/// The run as the API shows it, with its place in the queue.
pub fn get(conn: &mut PgConnection, id: i64) -> QueryResult<Option<Run>> {
    match find(conn, id)? {
        Some(row) => with_queue_position(conn, row).map(Some),
        None => Ok(None),
    }
}

pub fn with_queue_position(conn: &mut PgConnection, row: RunRow) -> QueryResult<Run> {
    let positions = queue_positions(conn, &[row.id])?;
    let position = positions.get(&row.id).copied();
    Ok(row.into_run(position))
}

#[derive(QueryableByName)]
struct QueuePosition {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

/// 1 for the next queued run of its environment, 2 for the one after, ...;
/// reservations waiting before a run count too. A pool's run: its place
/// in the pool's queue.
pub fn queue_positions(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<HashMap<i64, i64>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<QueuePosition> = diesel::sql_query(
        "SELECT r.id, CASE WHEN r.environment_id IS NULL THEN \
              (SELECT count(*) FROM test_runs q \
               WHERE q.environment_id IS NULL AND q.environment_label = r.environment_label \
                 AND q.status = 'queued' AND q.id <= r.id) \
            ELSE \
              (SELECT count(*) FROM test_runs q \
               WHERE q.environment_id = r.environment_id AND q.status = 'queued' AND q.id <= r.id) \
            + (SELECT count(*) FROM reservations w \
               WHERE w.environment_id = r.environment_id AND w.state = 'waiting' AND w.queue_order < r.id) \
            END AS position \
         FROM test_runs r WHERE r.id = ANY($1) AND r.status = 'queued'",
    )
    .bind::<Array<BigInt>, _>(ids)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.id, r.position)).collect())
}

/// How many runs there are, as the run_counts triggers keep it.
fn count_all(conn: &mut PgConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        runs: i64,
    }
    diesel::sql_query("SELECT coalesce(sum(runs), 0)::bigint AS runs FROM run_counts")
        .get_result::<Count>(conn)
        .map(|c| c.runs)
}

/// A page of runs, newest first, and how many match in all.
pub fn list(
    conn: &mut PgConnection,
    query: &RunListQuery,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<Run>, i64)> {
    let filtered = || {
        let mut select = test_runs::table.into_boxed();
        if let Some(status) = query.status {
            select = select.filter(test_runs::status.eq(status));
        }
        if let Some(username) = &query.username {
            select = select.filter(test_runs::username.eq(username.clone()));
        }
        if let Some(environment_id) = query.environment_id {
            select = select.filter(test_runs::environment_id.eq(environment_id));
        }
        select
    };
    let unfiltered =
        query.status.is_none() && query.username.is_none() && query.environment_id.is_none();
    let total: i64 = if unfiltered {
        count_all(conn)?
    } else {
        filtered().count().get_result(conn)?
    };
    let rows: Vec<RunRow> = filtered()
        .select(RunRow::as_select())
        .order(test_runs::id.desc())
        .limit(per_page)
        .offset((page - 1).saturating_mul(per_page))
        .load(conn)?;
    let queued: Vec<i64> = rows
        .iter()
        .filter(|row| row.status == RunStatus::Queued)
        .map(|row| row.id)
        .collect();
    let positions = queue_positions(conn, &queued)?;
    let runs = rows
        .into_iter()
        .map(|row| {
            let position = positions.get(&row.id).copied();
            row.into_run(position)
        })
        .collect();
    Ok((runs, total))
}

/// A run's cases in report order, each with the artifacts it attached.
pub fn cases(conn: &mut PgConnection, run_id: i64) -> QueryResult<Vec<CaseResult>> {
    let rows: Vec<CaseRow> = run_cases::table
        .filter(run_cases::run_id.eq(run_id))
        .select(CaseRow::as_select())
        .order(run_cases::id)
        .load(conn)?;
    let mut attachments = super::artifacts::of_cases(conn, run_id)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut case = CaseResult::from(row);
            case.attachments = attachments.remove(&case.nodeid).unwrap_or_default();
            case
        })
        .collect())
}

/// Pins or unpins a run: a pinned run keeps its details whatever the
/// retention. False if there is no such run.
pub fn set_pinned(conn: &mut PgConnection, id: i64, pinned: bool) -> QueryResult<bool> {
    let changed = diesel::update(test_runs::table.find(id))
        .set(test_runs::pinned.eq(pinned))
        .execute(conn)?;
    Ok(changed > 0)
}

/// Node ids of a run's failed and errored cases, in report order, to run
/// again. A node id stored shortened cannot select its test: its whole
/// file stands in for it.
pub fn failed_nodeids(conn: &mut PgConnection, run_id: i64) -> QueryResult<Vec<String>> {
    let ids: Vec<String> = run_cases::table
        .filter(run_cases::run_id.eq(run_id))
        .filter(run_cases::outcome.eq_any([CaseOutcome::Failed, CaseOutcome::Error]))
        .select(run_cases::nodeid)
        .order(run_cases::id)
        .load(conn)?;
    let mut seen = std::collections::HashSet::new();
    Ok(ids
        .into_iter()
        .map(|id| match shortened_file(&id) {
            Some(file) => file.to_string(),
            None => id,
        })
        .filter(|id| seen.insert(id.clone()))
        .collect())
}

/// Node ids are kept whole up to this many bytes: an index entry holds
/// at most about 2.7 kB, and a longer id would fail the whole finish.
const MAX_STORED_NODEID: usize = 1024;
/// Ends a shortened node id, followed by a hash of the whole one, so that
/// two long ids with one beginning stay apart.
const SHORTENED_MARK: &str = "…#";

/// `nodeid` as it is stored: itself, or (when longer than
/// [`MAX_STORED_NODEID`]) its beginning, [`SHORTENED_MARK`] and a hash of
/// the whole.
pub fn stored_nodeid(nodeid: &str) -> std::borrow::Cow<'_, str> {
    if nodeid.len() <= MAX_STORED_NODEID {
        return nodeid.into();
    }
    let hash = crate::hash::fnv1a(nodeid.bytes());
    let suffix = format!("{SHORTENED_MARK}{hash:016x}");
    let mut end = MAX_STORED_NODEID - suffix.len();
    while !nodeid.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &nodeid[..end]).into()
}

/// The file of a node id that [`stored_nodeid`] shortened.
fn shortened_file(stored: &str) -> Option<&str> {
    let (kept, hash) = stored.rsplit_once(SHORTENED_MARK)?;
    let is_hash = hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    // Shortened ids have the full length, less at most the 3 bytes a cut
    // on a character boundary can lose.
    let full_length = stored.len() + 3 >= MAX_STORED_NODEID;
    let file = kept.split("::").next()?;
    (is_hash && full_length && !file.is_empty()).then_some(file)
}

/// The run, locked until the transaction ends.
pub fn lock(conn: &mut PgConnection, id: i64) -> QueryResult<Option<RunRow>> {
    test_runs::table
        .find(id)
        .select(RunRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Cancels a queued run at once.
pub fn cancel_queued(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(
        test_runs::table
            .find(id)
            .filter(test_runs::status.eq(RunStatus::Queued)),
    )
    .set((
        test_runs::status.eq(RunStatus::Cancelled),
        test_runs::status_reason.eq("cancelled while queued"),
        test_runs::finished_at.eq(diesel::dsl::now),
        test_runs::cancel_requested.eq(true),
    ))
    .execute(conn)
}

/// Asks the holder of a running run to stop it.
pub fn request_cancel(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(test_runs::table.find(id))
        .set(test_runs::cancel_requested.eq(true))
        .execute(conn)
}

#[derive(QueryableByName)]
struct RunId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// A queued or running run that names the test file `file`, itself, a node
/// id in it or a directory holding it; checked in the database, so that
/// only the active runs' paths are read, never loaded.
pub fn active_run_naming(conn: &mut PgConnection, file: &str) -> QueryResult<Option<i64>> {
    let found: Option<RunId> = diesel::sql_query(
        "SELECT r.id FROM test_runs r \
         WHERE r.status IN ('queued', 'running') AND EXISTS ( \
           SELECT 1 FROM jsonb_array_elements_text(r.paths) AS p (path) \
           CROSS JOIN LATERAL (SELECT rtrim(split_part(p.path, '::', 1), '/') AS location) l \
           WHERE l.location = $1 OR left($1, length(l.location) + 1) = l.location || '/') \
         ORDER BY r.id LIMIT 1",
    )
    .bind::<Text, _>(file)
    .get_result(conn)
    .optional()?;
    Ok(found.map(|r| r.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_node_ids_are_stored_shortened_and_rerun_as_their_file() {
        assert_eq!(stored_nodeid("a.py::t[1]"), "a.py::t[1]");
        let long = format!("dir/a.py::test[{}é]", "x".repeat(3000));
        let stored = stored_nodeid(&long);
        assert!(stored.len() <= MAX_STORED_NODEID, "{}", stored.len());
        assert!(stored.starts_with("dir/a.py::test[xxx"));
        let longer = format!("dir/a.py::test[{}", "x".repeat(3001));
        let other = stored_nodeid(&longer);
        assert_ne!(stored, other, "same beginning, other id");
        assert_eq!(shortened_file(&stored), Some("dir/a.py"));
        assert_eq!(
            shortened_file("a.py::t[…#0123456789abcdef]"),
            None,
            "short ids are whole"
        );
        // Cut on a character boundary, whatever the bytes.
        let wide = format!("b.py::t[{}]", "é".repeat(1000));
        assert!(stored_nodeid(&wide).len() <= MAX_STORED_NODEID);
    }
}
