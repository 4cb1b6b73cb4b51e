//! The busy row of each environment as a lease: claim, renew, finish and
//! reclaim. Every write about a running run names the fence it was started
//! under, so a holder that lost its lease changes nothing.

use diesel::deserialize;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::row::NamedRow;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz};

use super::logs::MAX_CHUNK_BYTES;
use super::models::{EnvironmentRow, NewCaseRow, NewRunRow, RunRow};
use super::schema::{environment_locks, run_cases, run_log_chunks, test_runs};
use shared::{CaseResult, RunStatus, RunSummary};

/// The columns of an `environments` value `$source` in a query's answer,
/// named as [`claimed_environment`] reads them: a literal, so that the
/// query stays a fixed text (see [`super::kept_sql`]).
macro_rules! claimed_environment_columns {
    ($source:literal) => {
        concat!(
            "(",
            $source,
            ").id AS claimed_environment_id, ",
            "(",
            $source,
            ").name AS claimed_environment_name, ",
            "(",
            $source,
            ").description AS claimed_environment_description, ",
            "(",
            $source,
            ").variables AS claimed_environment_variables, ",
            "(",
            $source,
            ").run_timeout_secs AS claimed_environment_run_timeout_secs, ",
            "(",
            $source,
            ").labels AS claimed_environment_labels, ",
            "(",
            $source,
            ").maintenance_reason AS claimed_environment_maintenance_reason, ",
            "(",
            $source,
            ").maintenance_since AS claimed_environment_maintenance_since, ",
            "(",
            $source,
            ").maintenance_until AS claimed_environment_maintenance_until, ",
            "(",
            $source,
            ").protected AS claimed_environment_protected, ",
            "(",
            $source,
            ").allowed_users AS claimed_environment_allowed_users"
        )
    };
}

/// A run this instance has claimed, with what it needs to start it.
#[derive(Debug, Clone)]
pub struct Claim {
    pub run: RunRow,
    pub environment: EnvironmentRow,
    pub fence: i64,
    /// The API token its tests get, when the claimer issues them.
    pub token: Option<RunToken>,
}

impl Claim {
    /// A run the database started under `fence`, with the token it issued
    /// (`token_id`) for the secret made here, if both are there.
    fn started(
        run: RunRow,
        environment: EnvironmentRow,
        fence: i64,
        token_id: Option<i64>,
        secret: Option<String>,
    ) -> Claim {
        Claim {
            token: token_id
                .zip(secret)
                .map(|(id, secret)| RunToken { id, secret }),
            run,
            environment,
            fence,
        }
    }
}

/// An API token of a run's user for the run's tests, issued with its
/// claim and revoked with its finish.
#[derive(Clone)]
pub struct RunToken {
    pub id: i64,
    pub secret: String,
}

impl std::fmt::Debug for RunToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(QueryableByName)]
struct Candidate {
    #[diesel(sql_type = Integer)]
    environment_id: i32,
}

/// Free environments with something to start: a queued run for it or for
/// a pool it is in (only their holder's, while a reservation or hold keeps
/// one), or a reservation next in line. Environments in maintenance are
/// left alone, and so are those without one of `runner_labels`, when
/// given. The one whose first waiter is oldest comes first, so that none
/// starves under the cap.
pub fn candidates(
    conn: &mut PgConnection,
    limit: i64,
    runner_labels: Option<&[String]>,
) -> QueryResult<Vec<i32>> {
    let rows: Vec<Candidate> = super::kept_sql(
        "WITH free AS ( \
           SELECT e.id, e.labels FROM environments e \
           WHERE (e.maintenance_reason IS NULL OR e.maintenance_until <= now()) \
             AND ($2::text[] IS NULL OR e.labels && $2) \
             AND NOT EXISTS (SELECT 1 FROM environment_locks l WHERE l.environment_id = e.id) \
         ), heads AS ( \
           SELECT f.id AS environment_id, \
             (SELECT min(q.id) FROM test_runs q WHERE q.status = 'queued' \
                AND q.environment_id = f.id AND (h.owner IS NULL OR q.username = h.owner)) AS first_run, \
             (SELECT min(q.id) FROM test_runs q WHERE q.status = 'queued' \
                AND q.environment_id IS NULL AND q.environment_label = ANY (f.labels) \
                AND (h.owner IS NULL OR q.username = h.owner)) AS first_pool_run, \
             (SELECT min(w.queue_order) FROM reservations w WHERE w.state = 'waiting' \
                AND w.environment_id = f.id AND h.owner IS NULL) AS first_reservation \
           FROM free f \
           LEFT JOIN LATERAL (SELECT r.owner FROM reservations r WHERE r.environment_id = f.id \
                              AND r.state = 'active' AND r.expires_at > now()) h ON true \
         ) \
         SELECT environment_id FROM heads \
         WHERE least(first_run, first_pool_run, first_reservation) IS NOT NULL \
         ORDER BY least(first_run, first_pool_run, first_reservation), environment_id LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .bind::<Nullable<Array<Text>>, _>(runner_labels)
    .load(conn)?;
    Ok(rows.into_iter().map(|c| c.environment_id).collect())
}

/// What a claim did.
#[derive(Debug)]
pub enum Claimed {
    /// A run to start, under its new lease.
    Run(Box<Claim>),
    /// A reservation next in line now holds the environment.
    Reservation(i64),
    /// Nothing to start: busy, held for someone else, in maintenance, or
    /// its queue emptied meanwhile.
    Nothing,
}

/// Whether a lease holds the environment, whether any reservation holds
/// it or waits for it, and its own oldest queued run.
#[derive(QueryableByName)]
struct Occupancy {
    #[diesel(sql_type = Bool)]
    busy: bool,
    #[diesel(sql_type = Bool)]
    reserved: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    first_run: Option<i64>,
}

/// An environment's row, locked for a claim, and whether its maintenance
/// window holds now (by the database's clock).
#[derive(QueryableByName)]
struct LockedEnvironment {
    #[diesel(embed)]
    environment: EnvironmentRow,
    #[diesel(sql_type = Bool)]
    in_maintenance: bool,
}

/// How a claim treats locks that others hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patience {
    /// Waits for the environment's row (a reservation or maintenance being
    /// written), as the scheduler does.
    Wait,
    /// Never waits, and leaves reservations, pools' runs and runs that
    /// an older run waits before to the scheduler: the claim rides along
    /// in another transaction (a finish), which must not fail or stall
    /// because of it, and keeps its run's slot.
    Skip,
}

/// Who claims: the instance's name, its lease length and, with
/// `RUNNER_LABELS`, the labels of the environments it serves.
#[derive(Debug, Clone, Copy)]
pub struct Claimer<'a> {
    pub holder: &'a str,
    pub lease_secs: i64,
    pub runner_labels: Option<&'a [String]>,
    /// With accounts on, the default run time-out in seconds: the claim
    /// also issues the run's token (see [`RunToken`]), good for the run's
    /// time-out and an hour.
    pub run_tokens: Option<i64>,
}

/// Starts what comes next on the environment, in one transaction that
/// holds the environment's row (as reservations and maintenance do): the
/// oldest queued run for it or for a pool it is in, under a new lease and
/// fence, or, when a reservation waits before every run, that reservation.
/// While a reservation or hold keeps the environment, only its owner's
/// runs start.
pub fn claim(
    conn: &mut PgConnection,
    environment_id: i32,
    claimer: Claimer<'_>,
) -> QueryResult<Claimed> {
    conn.transaction(|conn| claim_in(conn, environment_id, claimer, Patience::Wait))
}

/// [`claim`] inside the caller's transaction.
fn claim_in(
    conn: &mut PgConnection,
    environment_id: i32,
    claimer: Claimer<'_>,
    patience: Patience,
) -> QueryResult<Claimed> {
    let locked: Option<LockedEnvironment> = match patience {
        Patience::Wait => super::kept_sql(
            "SELECT *, (maintenance_reason IS NOT NULL AND \
                        (maintenance_until IS NULL OR maintenance_until > now())) AS in_maintenance \
             FROM environments WHERE id = $1 FOR NO KEY UPDATE",
        ),
        Patience::Skip => super::kept_sql(
            "SELECT *, (maintenance_reason IS NOT NULL AND \
                        (maintenance_until IS NULL OR maintenance_until > now())) AS in_maintenance \
             FROM environments WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED",
        ),
    }
    .bind::<Integer, _>(environment_id)
    .get_result(conn)
    .optional()?;
    let Some(LockedEnvironment {
        environment,
        in_maintenance,
    }) = locked
    else {
        return Ok(Claimed::Nothing);
    };
    let served = claimer
        .runner_labels
        .is_none_or(|mine| environment.labels.iter().any(|label| mine.contains(label)));
    if in_maintenance || !served {
        return Ok(Claimed::Nothing);
    }
    // Read after the row lock is ours (a statement of its own, so a
    // fresh snapshot): a reservation made while we waited is seen.
    let Occupancy {
        busy,
        reserved,
        first_run,
    } = super::kept_sql(
        "SELECT EXISTS (SELECT 1 FROM environment_locks WHERE environment_id = $1) AS busy, \
                EXISTS (SELECT 1 FROM reservations \
                        WHERE environment_id = $1 AND state IN ('active', 'waiting')) AS reserved, \
                (SELECT id FROM test_runs WHERE environment_id = $1 AND status = 'queued' \
                 ORDER BY id LIMIT 1) AS first_run",
    )
    .bind::<Integer, _>(environment_id)
    .get_result(conn)?;
    if busy || (reserved && patience == Patience::Skip) {
        return Ok(Claimed::Nothing);
    }
    // A finish that just released the lease also wrote its hold, in the
    // same transaction: once the lease is seen gone, the hold is seen.
    // Without any reservation, there is none to end, follow or wait for.
    let owner = if reserved {
        super::reservations::end_expired(conn, Some(environment_id))?;
        super::reservations::active(conn, environment_id)?.map(|hold| hold.owner)
    } else {
        None
    };
    let own_run = match &owner {
        None => first_run,
        Some(owner) => test_runs::table
            .filter(test_runs::environment_id.eq(environment_id))
            .filter(test_runs::status.eq(RunStatus::Queued))
            .filter(test_runs::username.eq(owner))
            .order(test_runs::id)
            .select(test_runs::id)
            .first(conn)
            .optional()?,
    };
    // A pool's runs are claimed one after the other by the scheduler, so
    // that they start in order across the pool's environments.
    let pool_run = match patience {
        Patience::Wait => first_pool_run(conn, &environment.labels, owner.as_deref(), own_run)?,
        Patience::Skip => None,
    };
    let next_run = match (own_run, pool_run) {
        (Some(own), Some(pool)) => Some(own.min(pool)),
        (run, None) | (None, run) => run,
    };
    let next_reservation = if reserved && owner.is_none() {
        super::reservations::first_waiting(conn, environment_id)?
    } else {
        None
    };
    match (next_run, next_reservation) {
        (run, Some(reservation)) if run.is_none_or(|id| reservation.queue_order < id) => {
            super::reservations::activate(conn, reservation.id)?;
            Ok(Claimed::Reservation(reservation.id))
        }
        (Some(run_id), _) => start_run(conn, &environment, run_id, claimer, patience),
        (None, _) => Ok(Claimed::Nothing),
    }
}

/// The oldest queued run of the pools of `labels` older than `before`,
/// locked: another instance claiming it for another environment of the
/// pool skips it and takes the next, so a pool's runs are never taken
/// twice and never wait for each other's claims.
fn first_pool_run(
    conn: &mut PgConnection,
    labels: &[String],
    owner: Option<&str>,
    before: Option<i64>,
) -> QueryResult<Option<i64>> {
    if labels.is_empty() {
        return Ok(None);
    }
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let found: Option<Id> = super::kept_sql(
        "SELECT id FROM test_runs \
         WHERE status = 'queued' AND environment_id IS NULL AND environment_label = ANY ($1) \
           AND ($2::text IS NULL OR username = $2) AND ($3::bigint IS NULL OR id < $3) \
         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind::<Array<Text>, _>(labels)
    .bind::<Nullable<Text>, _>(owner)
    .bind::<Nullable<BigInt>, _>(before)
    .get_result(conn)
    .optional()?;
    Ok(found.map(|f| f.id))
}

/// What [`queue_on`] did with a new run.
#[derive(Debug)]
pub enum Queued {
    /// Nothing written: this many runs are queued already.
    TooMany(i64),
    /// Nothing written: the environment does not exist.
    NoEnvironment,
    /// Inserted, waiting in the environment's queue.
    Waiting(Box<RunRow>),
    /// Inserted running, under this claim.
    Started(Box<Claim>),
}

/// Queues a run from the API on one environment or, given a claimer,
/// starts it at once when nothing else has a claim to the environment or
/// to the slot it takes (`may_start_first`: an older run of this
/// environment or of a pool, or one waiting for a slot, goes first; a
/// reservation, a hold or maintenance keeps it queued). One round trip,
/// the `queue_run_on` function: the room in the queues, the environment's
/// row lock and the insert, whose snapshot is newer than the lock, so the
/// rule sees every claim and reservation made before. A run that waits is
/// for the scheduler, which decides as [`claim`] does. The caller holds
/// the catalog lock in the transaction it commits. `new` is a run as
/// `runs::create` makes it: no rerun, group, shard or schedule.
pub fn queue_on(
    conn: &mut PgConnection,
    environment_id: i32,
    max_queued: i64,
    new: &NewRunRow,
    claimer: Option<Claimer<'_>>,
) -> QueryResult<Queued> {
    debug_assert!(
        new.rerun_of.is_none()
            && new.run_group_id.is_none()
            && new.shard.is_none()
            && new.schedule_id.is_none()
            && new.environment_label.is_none(),
        "queue_on inserts a run from the API only"
    );
    let secret = claimer.and_then(run_secret);
    let secret_hash = secret.as_deref().map(crate::secrets::secret_hash);
    let answer: QueueAnswer = super::kept_sql(concat!(
        "SELECT s.step, s.queued_count, s.lease_fence, s.run_token_id, (s.run).*, ",
        claimed_environment_columns!("s.environment"),
        " FROM queue_run_on($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) AS s",
    ))
    .bind::<Integer, _>(environment_id)
    .bind::<BigInt, _>(max_queued)
    .bind::<Text, _>(&new.username)
    .bind::<Jsonb, _>(&new.paths)
    .bind::<Nullable<Integer>, _>(new.hold_on_failure_minutes)
    .bind::<Nullable<Jsonb>, _>(new.selection.as_ref())
    .bind::<Nullable<BigInt>, _>(new.token_id)
    .bind::<Nullable<Text>, _>(claimer.map(|c| c.holder))
    .bind::<BigInt, _>(claimer.map_or(0, |c| c.lease_secs))
    .bind::<Nullable<Array<Text>>, _>(claimer.and_then(|c| c.runner_labels))
    .bind::<Nullable<Text>, _>(secret_hash.as_deref())
    .bind::<BigInt, _>(claimer.and_then(|c| c.run_tokens).unwrap_or(0))
    .get_result(conn)?;
    Ok(match answer {
        QueueAnswer::TooMany(queued) => Queued::TooMany(queued),
        QueueAnswer::NoEnvironment => Queued::NoEnvironment,
        QueueAnswer::Waiting(run) => Queued::Waiting(run),
        QueueAnswer::Started(started) => {
            let (run, environment, fence, token_id) = *started;
            Queued::Started(Box::new(Claim::started(
                run,
                environment,
                fence,
                token_id,
                secret,
            )))
        }
    })
}

/// `queue_run_on`'s answer, by its `step`; a start comes with its
/// environment, its lease's fence and its token's id.
enum QueueAnswer {
    TooMany(i64),
    NoEnvironment,
    Waiting(Box<RunRow>),
    Started(Box<(RunRow, EnvironmentRow, i64, Option<i64>)>),
}

impl QueryableByName<Pg> for QueueAnswer {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        let step = NamedRow::get::<Text, String>(row, "step")?;
        Ok(match step.as_str() {
            "too many" => QueueAnswer::TooMany(NamedRow::get::<BigInt, i64>(row, "queued_count")?),
            "no environment" => QueueAnswer::NoEnvironment,
            "queued" => {
                QueueAnswer::Waiting(Box::new(<RunRow as QueryableByName<Pg>>::build(row)?))
            }
            "started" => QueueAnswer::Started(Box::new((
                <RunRow as QueryableByName<Pg>>::build(row)?,
                claimed_environment(row)?,
                NamedRow::get::<BigInt, i64>(row, "lease_fence")?,
                NamedRow::get::<Nullable<BigInt>, Option<i64>>(row, "run_token_id")?,
            ))),
            other => return Err(format!("queue_run_on answered an unknown step {other:?}").into()),
        })
    }
}

/// A claim's last step: the run starts on the environment. A claim riding
/// along in a finish keeps the finished run's slot, so it starts the run
/// only when nothing else has a claim to the slot (as
/// [`queue_on`] does): an older run waiting for a slot, or for a
/// pool, goes first, through the scheduler.
fn start_run(
    conn: &mut PgConnection,
    environment: &EnvironmentRow,
    run_id: i64,
    claimer: Claimer<'_>,
    patience: Patience,
) -> QueryResult<Claimed> {
    let only_if_first = patience == Patience::Skip;
    Ok(
        match start(conn, environment, run_id, claimer, only_if_first)? {
            Some(claim) => Claimed::Run(Box::new(claim)),
            None => Claimed::Nothing,
        },
    )
}

/// The run a claim started, its lease's fence and the token it issued.
#[derive(QueryableByName)]
struct StartedRun {
    #[diesel(embed)]
    run: RunRow,
    #[diesel(sql_type = BigInt)]
    lease_fence: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    run_token_id: Option<i64>,
}

/// Starts queued run `run_id` on `environment` in one statement (the
/// database's `start_queued_run`, which a hand-off calls too): locks the
/// run, takes the environment's busy row for it under a new fence, marks
/// it running there (a pool's run gets its environment now) and, if the
/// claimer issues them, inserts the run's token (as the run's user, if it
/// has an account, good for the run's time-out and an hour). A run whose
/// row is locked elsewhere (a cancel under way) is not waited for, so that
/// a claim riding along in a finish never stalls it. With
/// `only_if_first`, the run starts only when nothing else has a claim to
/// the environment or to the slot (see [`queue_on`]). `None`:
/// nothing started.
fn start(
    conn: &mut PgConnection,
    environment: &EnvironmentRow,
    run_id: i64,
    claimer: Claimer<'_>,
    only_if_first: bool,
) -> QueryResult<Option<Claim>> {
    let secret = run_secret(claimer);
    let secret_hash = secret.as_deref().map(crate::secrets::secret_hash);
    let started: Option<StartedRun> = super::kept_sql(
        "SELECT (s.run).*, s.lease_fence, s.run_token_id \
         FROM start_queued_run($1, $2, $3, $4, $5, $6, $7, $8) AS s",
    )
    .bind::<Integer, _>(environment.id)
    .bind::<BigInt, _>(run_id)
    .bind::<Text, _>(claimer.holder)
    .bind::<BigInt, _>(claimer.lease_secs)
    .bind::<Bool, _>(only_if_first)
    .bind::<Nullable<Array<Text>>, _>(claimer.runner_labels)
    .bind::<Nullable<Text>, _>(secret_hash.as_deref())
    .bind::<BigInt, _>(claimer.run_tokens.unwrap_or(0))
    .get_result(conn)
    .optional()?;
    Ok(started.map(
        |StartedRun {
             run,
             lease_fence,
             run_token_id,
         }| { Claim::started(run, environment.clone(), lease_fence, run_token_id, secret) },
    ))
}

/// The secret of the token a claim issues, if the claimer issues them.
fn run_secret(claimer: Claimer<'_>) -> Option<String> {
    claimer.run_tokens.and_then(|_| {
        crate::secrets::new_secret()
            .map(|secret| format!("te_{secret}"))
            .inspect_err(|e| tracing::warn!(error = %e, "no API token for the run's tests"))
            .ok()
    })
}

/// Pushes the lease's expiry forward. False: the lease is no longer ours.
pub fn renew(
    conn: &mut PgConnection,
    environment_id: i32,
    fence: i64,
    lease_secs: i64,
) -> QueryResult<bool> {
    let renewed = super::kept_sql(
        "UPDATE environment_locks SET expires_at = now() + make_interval(secs => $3) \
         WHERE environment_id = $1 AND fence = $2",
    )
    .bind::<Integer, _>(environment_id)
    .bind::<BigInt, _>(fence)
    .bind::<BigInt, _>(lease_secs)
    .execute(conn)?;
    Ok(renewed == 1)
}

/// Records the run's process group, with what tells it from a later group
/// of the same number: the boot id and its leader's start time.
pub fn record_pgid(
    conn: &mut PgConnection,
    environment_id: i32,
    fence: i64,
    pgid: i32,
    boot_id: Option<&str>,
    start_ticks: Option<u64>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        environment_locks::table
            .find(environment_id)
            .filter(environment_locks::fence.eq(fence)),
    )
    .set((
        environment_locks::pgid.eq(Some(pgid)),
        environment_locks::boot_id.eq(boot_id),
        environment_locks::start_ticks.eq(start_ticks.and_then(|t| i64::try_from(t).ok())),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Whether someone asked to cancel this run (on any instance).
pub fn cancel_requested(conn: &mut PgConnection, run_id: i64) -> QueryResult<bool> {
    test_runs::table
        .find(run_id)
        .select(test_runs::cancel_requested)
        .first(conn)
}

/// How much of a running run is stored: its log's length and its cases.
/// Every write names what it expects there, so that a retry after a commit
/// whose answer was lost can neither leave a hole nor store a case twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    pub log_bytes: i64,
    pub cases: i32,
}

/// What a write about a running run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The run is no longer ours (another holder, or finished).
    Lost,
    /// An earlier write committed although its answer was lost: this much
    /// is stored; write the rest from there.
    Behind(Stored),
}

#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = BigInt)]
    log_bytes: i64,
    #[diesel(sql_type = Integer)]
    case_count: i32,
}

/// What is stored of run `run_id` if it is still running under `fence`.
fn stored_if_ours(conn: &mut PgConnection, run_id: i64, fence: i64) -> QueryResult<Option<Stored>> {
    let row: Option<StoredRow> = super::kept_sql(
        "SELECT log_bytes, case_count FROM test_runs \
         WHERE id = $1 AND fence = $2 AND status = 'running'",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<BigInt, _>(fence)
    .get_result(conn)
    .optional()?;
    Ok(row.map(|r| Stored {
        log_bytes: r.log_bytes,
        cases: r.case_count,
    }))
}

/// Appends log and finished cases to a running run and records its
/// progress, if the fence still holds and `expected` is what is stored.
pub fn append(
    conn: &mut PgConnection,
    run_id: i64,
    fence: i64,
    expected: Stored,
    content: &str,
    cases: &[CaseResult],
    progress: &RunSummary,
) -> QueryResult<Written> {
    conn.transaction(|conn| {
        let end = expected.log_bytes + content.len() as i64;
        let updated = diesel::update(
            test_runs::table
                .find(run_id)
                .filter(test_runs::fence.eq(fence))
                .filter(test_runs::status.eq(RunStatus::Running))
                .filter(test_runs::log_bytes.eq(expected.log_bytes))
                .filter(test_runs::case_count.eq(expected.cases)),
        )
        .set((
            test_runs::log_bytes.eq(end),
            test_runs::case_count.eq(expected.cases + cases.len() as i32),
            test_runs::total.eq(progress.total),
            test_runs::passed.eq(progress.passed),
            test_runs::failed.eq(progress.failed),
            test_runs::skipped.eq(progress.skipped),
            test_runs::errors.eq(progress.errors),
            test_runs::xfailed.eq(progress.xfailed),
            test_runs::xpassed.eq(progress.xpassed),
            test_runs::subtests_passed.eq(progress.subtests_passed),
            test_runs::completed.eq(progress.completed),
        ))
        .execute(conn)?;
        if updated == 0 {
            return Ok(match stored_if_ours(conn, run_id, fence)? {
                Some(stored) => Written::Behind(stored),
                None => Written::Lost,
            });
        }
        insert_log(conn, run_id, expected.log_bytes, content)?;
        insert_cases(conn, run_id, cases)?;
        Ok(Written::Done)
    })
}

/// Log text stored from `offset` on, in chunks of at most
/// `MAX_CHUNK_BYTES`.
fn insert_log(conn: &mut PgConnection, run_id: i64, offset: i64, text: &str) -> QueryResult<()> {
    let mut offset = offset;
    for piece in super::logs::pieces(text, MAX_CHUNK_BYTES as usize) {
        diesel::insert_into(run_log_chunks::table)
            .values((
                run_log_chunks::run_id.eq(run_id),
                run_log_chunks::start_offset.eq(offset),
                run_log_chunks::content.eq(piece),
            ))
            .execute(conn)?;
        offset += piece.len() as i64;
    }
    Ok(())
}

fn insert_cases(conn: &mut PgConnection, run_id: i64, cases: &[CaseResult]) -> QueryResult<()> {
    let nodeids: Vec<_> = cases
        .iter()
        .map(|case| super::runs::stored_nodeid(&case.nodeid))
        .collect();
    let rows: Vec<NewCaseRow> = cases
        .iter()
        .zip(&nodeids)
        .map(|(case, nodeid)| NewCaseRow {
            run_id,
            nodeid,
            outcome: case.outcome,
            duration_ms: case.duration_ms,
            message: case.message.as_deref(),
        })
        .collect();
    // Postgres takes at most 65535 binds per statement.
    for batch in rows.chunks(5000) {
        diesel::insert_into(run_cases::table)
            .values(batch)
            .execute(conn)?;
    }
    let attachments: Vec<(&str, &str)> = cases
        .iter()
        .zip(&nodeids)
        .flat_map(|(case, nodeid)| {
            case.attachments
                .iter()
                .take(super::artifacts::MAX_ATTACHMENTS_PER_CASE)
                .map(move |path| (nodeid.as_ref(), path.as_str()))
        })
        .collect();
    super::artifacts::link_to_cases(conn, run_id, &attachments)
}

/// How a run ended, as the runner saw it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: RunStatus,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub summary: RunSummary,
    /// The cases not stored yet.
    pub cases: Vec<CaseResult>,
    /// The rest of the log, not stored yet.
    pub log_tail: String,
    /// pytest's JUnit XML report, kept for `/api/runs/{id}/junit.xml`.
    pub junit_xml: Option<String>,
}

/// Writes the final status, the last cases, the JUnit report and the rest
/// of the log, revokes the run's token and releases the environment, all
/// or nothing, if the claim's fence still holds and `expected` is what is
/// stored. Its first statement renews the lease, so that the lease covers
/// the whole finish and the lease row is locked before the run's, in the
/// order reclaim takes them.
pub fn finish(
    conn: &mut PgConnection,
    claim: &Claim,
    lease_secs: i64,
    expected: Stored,
    outcome: &Outcome,
) -> QueryResult<Written> {
    finish_and_claim_next(conn, claim, lease_secs, expected, outcome, None)
        .map(|(written, _)| written)
}

/// [`finish`] and, with `claimer`, once the finish is written, in the same
/// transaction, a claim of what comes next on the environment: the next
/// run starts without a transaction of its own or a trip through the
/// scheduler. The claim never waits for a lock, so it cannot hold the
/// finish up, and leaves to the scheduler whatever needs its ordering
/// (see [`Patience::Skip`]); `None` when it claims nothing. The usual
/// finish is one call of `finish_and_hand_off` (see
/// [`finish_in_one_call`]), which repeats these steps in SQL: a change to
/// them is a change to both.
pub fn finish_and_claim_next(
    conn: &mut PgConnection,
    claim: &Claim,
    lease_secs: i64,
    expected: Stored,
    outcome: &Outcome,
    claimer: Option<Claimer<'_>>,
) -> QueryResult<(Written, Option<Claim>)> {
    if let Some(done) = finish_in_one_call(conn, claim, lease_secs, expected, outcome, claimer)? {
        return Ok(done);
    }
    conn.transaction(|conn| {
        // The run is listed to be recorded in insights and health: after
        // the next run starts if one is claimed, else at the end of this
        // transaction. See `runs_to_record`.
        let written = finish_in(conn, claim, lease_secs, expected, outcome)?;
        if written != Written::Done {
            return Ok((written, None));
        }
        let next = match claimer {
            Some(claimer) => match claim_in(conn, claim.environment.id, claimer, Patience::Skip)? {
                Claimed::Run(next) => Some(*next),
                Claimed::Reservation(_) | Claimed::Nothing => None,
            },
            None => None,
        };
        if next.is_none() {
            record_in_savepoint(conn, claim.run.id);
        }
        Ok((written, next))
    })
}

/// [`finish_and_claim_next`] in one call of the database's
/// `finish_and_hand_off`, which does the same statements in one round
/// trip: between two runs on an environment, the time is the database's
/// work alone. `None` when it wrote nothing: a case has attachments to
/// link, a hold may follow a failure, or the lease or the stored progress
/// is not what was expected; the transaction statement by statement then
/// does the finish, or tells why not.
fn finish_in_one_call(
    conn: &mut PgConnection,
    claim: &Claim,
    lease_secs: i64,
    expected: Stored,
    outcome: &Outcome,
    claimer: Option<Claimer<'_>>,
) -> QueryResult<Option<(Written, Option<Claim>)>> {
    if outcome
        .cases
        .iter()
        .any(|case| !case.attachments.is_empty())
    {
        return Ok(None);
    }
    let pieces = super::logs::pieces(&outcome.log_tail, MAX_CHUNK_BYTES as usize);
    let offsets: Vec<i64> = pieces
        .iter()
        .scan(expected.log_bytes, |offset, piece| {
            let start = *offset;
            *offset += piece.len() as i64;
            Some(start)
        })
        .collect();
    let nodeids: Vec<_> = outcome
        .cases
        .iter()
        .map(|case| super::runs::stored_nodeid(&case.nodeid))
        .collect();
    let nodeids: Vec<&str> = nodeids.iter().map(AsRef::as_ref).collect();
    let case_outcomes: Vec<&str> = outcome.cases.iter().map(|c| c.outcome.as_str()).collect();
    let durations: Vec<i64> = outcome.cases.iter().map(|c| c.duration_ms).collect();
    let messages: Vec<Option<&str>> = outcome.cases.iter().map(|c| c.message.as_deref()).collect();
    let summary = &outcome.summary;
    let summary = [
        summary.total,
        summary.passed,
        summary.failed,
        summary.skipped,
        summary.errors,
        summary.xfailed,
        summary.xpassed,
        summary.subtests_passed,
        summary.completed,
    ];
    let secret = claimer.and_then(run_secret);
    let secret_hash = secret.as_deref().map(crate::secrets::secret_hash);
    let handed: HandOff = super::kept_sql(concat!(
        "SELECT h.finished, h.left_for_sweep, h.next_fence, h.next_token, (h.started_run).*, ",
        claimed_environment_columns!("h.next_environment"),
        " FROM finish_and_hand_off($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                                  $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) AS h",
    ))
    .bind::<BigInt, _>(claim.run.id)
    .bind::<Integer, _>(claim.environment.id)
    .bind::<BigInt, _>(claim.fence)
    .bind::<BigInt, _>(lease_secs)
    .bind::<Text, _>(outcome.status.as_str())
    .bind::<Nullable<Text>, _>(outcome.reason.as_deref())
    .bind::<Nullable<Integer>, _>(outcome.exit_code)
    .bind::<BigInt, _>(expected.log_bytes + outcome.log_tail.len() as i64)
    .bind::<Array<Nullable<Integer>>, _>(&summary[..])
    .bind::<BigInt, _>(expected.log_bytes)
    .bind::<Integer, _>(expected.cases)
    .bind::<Array<BigInt>, _>(&offsets)
    .bind::<Array<Text>, _>(&pieces)
    .bind::<Array<Text>, _>(&nodeids)
    .bind::<Array<Text>, _>(&case_outcomes)
    .bind::<Array<BigInt>, _>(&durations)
    .bind::<Array<Nullable<Text>>, _>(&messages)
    .bind::<Nullable<Text>, _>(outcome.junit_xml.as_deref())
    .bind::<Nullable<BigInt>, _>(claim.token.as_ref().map(|token| token.id))
    .bind::<Nullable<Text>, _>(claimer.map(|c| c.holder))
    .bind::<Nullable<Array<Text>>, _>(claimer.and_then(|c| c.runner_labels))
    .bind::<Nullable<Text>, _>(secret_hash.as_deref())
    .bind::<BigInt, _>(claimer.and_then(|c| c.run_tokens).unwrap_or(0))
    .get_result(conn)?;
    if !handed.finished {
        return Ok(None);
    }
    if handed.left_for_sweep {
        tracing::warn!(
            run_id = claim.run.id,
            "a finished run is left for the sweep to record"
        );
    }
    let next = handed.next.map(|(run, environment, fence, token_id)| {
        Claim::started(run, environment, fence, token_id, secret)
    });
    Ok(Some((Written::Done, next)))
}

/// What `finish_and_hand_off` answers: whether it finished the run, and
/// the run it started next with that run's environment, lease fence and
/// token id. The environment's columns come renamed: the run's share some
/// of their names.
struct HandOff {
    finished: bool,
    left_for_sweep: bool,
    next: Option<(RunRow, EnvironmentRow, i64, Option<i64>)>,
}

impl QueryableByName<Pg> for HandOff {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        let finished = NamedRow::get::<Bool, bool>(row, "finished")?;
        let left_for_sweep = NamedRow::get::<Bool, bool>(row, "left_for_sweep")?;
        let Some(fence) = NamedRow::get::<Nullable<BigInt>, Option<i64>>(row, "next_fence")? else {
            return Ok(HandOff {
                finished,
                left_for_sweep,
                next: None,
            });
        };
        let token_id = NamedRow::get::<Nullable<BigInt>, Option<i64>>(row, "next_token")?;
        let run = <RunRow as QueryableByName<Pg>>::build(row)?;
        let environment = claimed_environment(row)?;
        Ok(HandOff {
            finished,
            left_for_sweep,
            next: Some((run, environment, fence, token_id)),
        })
    }
}

/// The environment's row as a claim locked it, from the columns named
/// `claimed_environment_*` (the run's own share some of their names).
fn claimed_environment<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<EnvironmentRow> {
    Ok(EnvironmentRow {
        id: NamedRow::get::<Integer, _>(row, "claimed_environment_id")?,
        name: NamedRow::get::<Text, _>(row, "claimed_environment_name")?,
        description: NamedRow::get::<Text, _>(row, "claimed_environment_description")?,
        variables: NamedRow::get::<Jsonb, _>(row, "claimed_environment_variables")?,
        run_timeout_secs: NamedRow::get::<Nullable<Integer>, _>(
            row,
            "claimed_environment_run_timeout_secs",
        )?,
        labels: NamedRow::get::<Array<Text>, _>(row, "claimed_environment_labels")?,
        maintenance_reason: NamedRow::get::<Nullable<Text>, _>(
            row,
            "claimed_environment_maintenance_reason",
        )?,
        maintenance_since: NamedRow::get::<Nullable<Timestamptz>, _>(
            row,
            "claimed_environment_maintenance_since",
        )?,
        maintenance_until: NamedRow::get::<Nullable<Timestamptz>, _>(
            row,
            "claimed_environment_maintenance_until",
        )?,
        protected: NamedRow::get::<Bool, _>(row, "claimed_environment_protected")?,
        allowed_users: NamedRow::get::<Array<Text>, _>(row, "claimed_environment_allowed_users")?,
    })
}

/// [`record_listed_run`] in a savepoint of the caller's transaction: a row
/// held by a stuck session leaves the run listed for the sweep instead of
/// failing what the transaction writes besides.
fn record_in_savepoint(conn: &mut PgConnection, run_id: i64) {
    if let Err(e) = conn.transaction(|conn| record_listed_run(conn, run_id)) {
        tracing::warn!(run_id, error = %e, "a finished run is left for the sweep to record");
    }
}

/// Records a run that a finish listed in `runs_to_record` in insights and
/// environment health, unless that is done already; each listed run is
/// recorded exactly once, by whoever takes it off the list. Fails rather
/// than wait more than a moment for a row another session holds.
pub fn record_listed_run(conn: &mut PgConnection, run_id: i64) -> QueryResult<()> {
    super::kept_sql("SELECT record_listed_run($1)")
        .bind::<BigInt, _>(run_id)
        .execute(conn)?;
    Ok(())
}

/// Records runs listed for longer than `older_than_secs`: their finish's
/// instance stopped before it recorded them. At most 100 at a time, and
/// none that another session is recording; answers how many.
pub fn record_left_over_runs(conn: &mut PgConnection, older_than_secs: i64) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Recorded {
        #[diesel(sql_type = BigInt)]
        recorded: i64,
    }
    let recorded: Recorded = super::kept_sql(
        "SELECT count(*) FILTER (WHERE record_listed_run(run_id)) AS recorded FROM ( \
           SELECT run_id FROM runs_to_record \
           WHERE listed_at < now() - make_interval(secs => $1) \
           ORDER BY run_id LIMIT 100 FOR UPDATE SKIP LOCKED \
         ) AS due",
    )
    .bind::<BigInt, _>(older_than_secs)
    .get_result(conn)?;
    Ok(recorded.recorded)
}

/// [`finish`] inside the caller's transaction.
fn finish_in(
    conn: &mut PgConnection,
    claim: &Claim,
    lease_secs: i64,
    expected: Stored,
    outcome: &Outcome,
) -> QueryResult<Written> {
    let (run_id, environment_id, fence) = (claim.run.id, claim.environment.id, claim.fence);
    if !renew(conn, environment_id, fence, lease_secs)? {
        return Ok(Written::Lost);
    }
    let log_end = expected.log_bytes + outcome.log_tail.len() as i64;
    let summary = &outcome.summary;
    // A cancel accepted while the run was ending wins: the caller was
    // told it is cancelled. Its row lock orders it before or after us.
    // The listing is seen by the run's health trigger, which fires once
    // the whole statement is done.
    let finished: Option<Finished> = super::kept_sql(
        "WITH finished AS ( \
           UPDATE test_runs SET \
             status = CASE WHEN cancel_requested THEN 'cancelled' ELSE $4 END, \
             status_reason = CASE WHEN cancel_requested THEN 'cancelled by user' ELSE $5 END, \
             exit_code = $6, finished_at = now(), log_bytes = $7, \
             total = $8, passed = $9, failed = $10, skipped = $11, errors = $12, \
             xfailed = $13, xpassed = $14, subtests_passed = $15, completed = $16, \
             case_count = case_count + $17 \
           WHERE id = $1 AND fence = $2 AND status = $3 AND log_bytes = $18 AND case_count = $19 \
           RETURNING id, status, username, hold_on_failure_minutes \
         ), listed AS ( \
           INSERT INTO runs_to_record (run_id) SELECT id FROM finished \
         ) \
         SELECT status, username, hold_on_failure_minutes FROM finished",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<BigInt, _>(fence)
    .bind::<Text, _>(RunStatus::Running.as_str())
    .bind::<Text, _>(outcome.status.as_str())
    .bind::<Nullable<Text>, _>(outcome.reason.as_deref())
    .bind::<Nullable<Integer>, _>(outcome.exit_code)
    .bind::<BigInt, _>(log_end)
    .bind::<Nullable<Integer>, _>(summary.total)
    .bind::<Nullable<Integer>, _>(summary.passed)
    .bind::<Nullable<Integer>, _>(summary.failed)
    .bind::<Nullable<Integer>, _>(summary.skipped)
    .bind::<Nullable<Integer>, _>(summary.errors)
    .bind::<Nullable<Integer>, _>(summary.xfailed)
    .bind::<Nullable<Integer>, _>(summary.xpassed)
    .bind::<Nullable<Integer>, _>(summary.subtests_passed)
    .bind::<Nullable<Integer>, _>(summary.completed)
    .bind::<Integer, _>(outcome.cases.len() as i32)
    .bind::<BigInt, _>(expected.log_bytes)
    .bind::<Integer, _>(expected.cases)
    .get_result(conn)
    .optional()?;
    let Some(finished) = finished else {
        return Ok(match stored_if_ours(conn, run_id, fence)? {
            Some(stored) => Written::Behind(stored),
            None => {
                release(conn, environment_id, fence)?;
                Written::Lost
            }
        });
    };
    insert_log(conn, run_id, expected.log_bytes, &outcome.log_tail)?;
    insert_cases(conn, run_id, &outcome.cases)?;
    hold_if_failed(conn, run_id, environment_id, finished)?;
    let token = claim.token.as_ref().map(|token| token.id);
    store_report_and_release(conn, run_id, environment_id, fence, outcome, token)?;
    Ok(Written::Done)
}

/// A run that asked for it and ended `failed` or `error` keeps its
/// environment for its user, in the transaction that releases the lease:
/// no other run can slip in between.
fn hold_if_failed(
    conn: &mut PgConnection,
    run_id: i64,
    environment_id: i32,
    finished: Finished,
) -> QueryResult<()> {
    match finished.hold_on_failure_minutes {
        Some(minutes) if matches!(finished.status, RunStatus::Failed | RunStatus::Error) => {
            super::reservations::hold_after_failure(
                conn,
                environment_id,
                &finished.username,
                run_id,
                minutes,
            )
        }
        _ => Ok(()),
    }
}

/// What [`finish`] wrote that its hold depends on.
#[derive(QueryableByName)]
struct Finished {
    #[diesel(sql_type = Text)]
    status: RunStatus,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Nullable<Integer>)]
    hold_on_failure_minutes: Option<i32>,
}

/// The last statement of a finish: the JUnit report stored, the run's
/// token revoked and the lease released.
fn store_report_and_release(
    conn: &mut PgConnection,
    run_id: i64,
    environment_id: i32,
    fence: i64,
    outcome: &Outcome,
    token: Option<i64>,
) -> QueryResult<()> {
    super::kept_sql(
        "WITH report AS ( \
           INSERT INTO run_reports (run_id, junit_xml) SELECT $1, $4 WHERE $4::text IS NOT NULL \
           ON CONFLICT DO NOTHING \
         ), revoked AS (DELETE FROM api_tokens WHERE id = $5) \
         DELETE FROM environment_locks WHERE environment_id = $2 AND fence = $3",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<Integer, _>(environment_id)
    .bind::<BigInt, _>(fence)
    .bind::<Nullable<Text>, _>(outcome.junit_xml.as_deref())
    .bind::<Nullable<BigInt>, _>(token)
    .execute(conn)?;
    Ok(())
}

fn release(conn: &mut PgConnection, environment_id: i32, fence: i64) -> QueryResult<usize> {
    diesel::delete(
        environment_locks::table
            .find(environment_id)
            .filter(environment_locks::fence.eq(fence)),
    )
    .execute(conn)
}

/// A lease taken back from a holder that is gone.
#[derive(Debug, QueryableByName)]
pub struct Reclaimed {
    #[diesel(sql_type = Integer)]
    pub environment_id: i32,
    #[diesel(sql_type = BigInt)]
    pub run_id: i64,
    #[diesel(sql_type = Nullable<Integer>)]
    pub pgid: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub boot_id: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub start_ticks: Option<i64>,
}

#[derive(QueryableByName)]
struct ExpiredLease {
    #[diesel(sql_type = Integer)]
    environment_id: i32,
    #[diesel(sql_type = BigInt)]
    fence: i64,
}

/// Takes back expired leases (or, with `holder`, every lease of that
/// holder) and finishes their runs as `error`, each in a transaction of its
/// own. A lease or run row locked by someone else (a stuck session) is
/// skipped for now, never waited for: the others are taken back anyway,
/// and that one at a later sweep, once its lock is gone. Each lease is
/// deleted by exactly one sweeper, so each run is finished exactly once.
pub fn reclaim(
    conn: &mut PgConnection,
    holder: Option<&str>,
    reason: &str,
) -> QueryResult<Vec<Reclaimed>> {
    let due: Vec<ExpiredLease> = match holder {
        None => super::kept_sql(
            "SELECT environment_id, fence FROM environment_locks WHERE expires_at < now() \
             ORDER BY expires_at LIMIT 200",
        )
        .load(conn)?,
        Some(holder) => {
            super::kept_sql("SELECT environment_id, fence FROM environment_locks WHERE holder = $1")
                .bind::<Text, _>(holder)
                .load(conn)?
        }
    };
    let mut reclaimed = Vec::new();
    for lease in due {
        let taken = conn.transaction(|conn| {
            let row: Option<Reclaimed> = super::kept_sql(
                "SELECT environment_id, run_id, pgid, boot_id, start_ticks FROM environment_locks \
                 WHERE environment_id = $1 AND fence = $2 AND ($3 OR expires_at < now()) \
                 FOR UPDATE SKIP LOCKED",
            )
            .bind::<Integer, _>(lease.environment_id)
            .bind::<BigInt, _>(lease.fence)
            .bind::<diesel::sql_types::Bool, _>(holder.is_some())
            .get_result(conn)
            .optional()?;
            let Some(row) = row else {
                return Ok(None);
            };
            let run_free: Option<i64> =
                super::kept_sql("SELECT id FROM test_runs WHERE id = $1 FOR UPDATE SKIP LOCKED")
                    .bind::<BigInt, _>(row.run_id)
                    .get_result::<RunIdRow>(conn)
                    .optional()?
                    .map(|r| r.id);
            if run_free.is_none() && run_exists(conn, row.run_id)? {
                tracing::warn!(
                    run_id = row.run_id,
                    "its run is locked by another session; taken back later"
                );
                return Ok(None);
            }
            // The run's token goes with its lease: its tests may outlive
            // their instance. A lost run is listed to be recorded, like a
            // finished one, so that its health trigger leaves it alone.
            let lost: Option<RunIdRow> = super::kept_sql(
                "WITH released AS ( \
                   DELETE FROM environment_locks WHERE environment_id = $1 AND fence = $2 \
                 ), revoked AS (DELETE FROM api_tokens WHERE run_id = $3), \
                 lost AS ( \
                   UPDATE test_runs SET status = 'error', status_reason = $4, finished_at = now() \
                   WHERE id = $3 AND status = 'running' RETURNING id \
                 ), listed AS (INSERT INTO runs_to_record (run_id) SELECT id FROM lost) \
                 SELECT id FROM lost",
            )
            .bind::<Integer, _>(row.environment_id)
            .bind::<BigInt, _>(lease.fence)
            .bind::<BigInt, _>(row.run_id)
            .bind::<Text, _>(reason)
            .get_result(conn)
            .optional()?;
            if lost.is_some() {
                // The cases it reported live count like those of any
                // finished run; a stuck session only delays that.
                record_in_savepoint(conn, row.run_id);
                run_shard_again(conn, row.run_id)?;
            }
            QueryResult::Ok(Some(row))
        });
        match taken {
            Ok(taken) => reclaimed.extend(taken),
            // That lease is taken back at a later sweep.
            Err(e) => tracing::warn!(environment_id = lease.environment_id, error = %e,
                "cannot take an expired lease back yet"),
        }
    }
    Ok(reclaimed)
}

/// How many runs a shard of a run group gets in all, when the instances
/// running it die: the group's result should not hang on one machine.
const SHARD_ATTEMPTS: i64 = 3;

/// Queues run `lost_id` again in its pool, if it is a shard of a run group
/// that has attempts left: its instance died, and another one finishes
/// the shard. In the transaction that finishes the lost run, so the shard
/// is never left without a run, nor given two.
fn run_shard_again(conn: &mut PgConnection, lost_id: i64) -> QueryResult<()> {
    let label: Option<Option<String>> = test_runs::table
        .find(lost_id)
        .filter(test_runs::run_group_id.is_not_null())
        .select(test_runs::environment_label)
        .first(conn)
        .optional()?;
    let Some(Some(label)) = label else {
        return Ok(());
    };
    super::runs::lock_pool(conn, &label)?;
    super::kept_sql(
        "INSERT INTO test_runs (username, environment_label, paths, rerun_of, \
                                hold_on_failure_minutes, run_group_id, shard, status_reason) \
         SELECT r.username, r.environment_label, r.paths, r.id, r.hold_on_failure_minutes, \
                r.run_group_id, r.shard, \
                'shard ' || r.shard || ' runs again: run ' || r.id || ' lost its instance' \
         FROM test_runs r \
         WHERE r.id = $1 AND (SELECT count(*) FROM test_runs s \
                              WHERE s.run_group_id = r.run_group_id AND s.shard = r.shard) < $2",
    )
    .bind::<BigInt, _>(lost_id)
    .bind::<BigInt, _>(SHARD_ATTEMPTS)
    .execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct RunIdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn run_exists(conn: &mut PgConnection, id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(test_runs::table.find(id))).get_result(conn)
}
