//! Webhooks and their outbox of deliveries. Deliveries are written by
//! triggers (a run finishing, an environment's busy row going) or by
//! [`announce_expiring`], each in the transaction of the change; senders
//! claim due ones with `SKIP LOCKED` and a lease, and record the result
//! only while their claim holds.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text, Timestamptz};
use shared::{CheckedWebhook, Delivery, DeliveryState, Webhook, WebhookFormat};

use super::schema::{webhook_deliveries, webhooks};

#[derive(Debug, Clone, QueryableByName)]
pub struct WebhookRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Array<Text>)]
    pub events: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub secret: Option<String>,
    #[diesel(sql_type = Text)]
    pub format: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub pending: i64,
    #[diesel(sql_type = BigInt)]
    pub failed: i64,
}

impl WebhookRow {
    pub fn into_webhook(self) -> Webhook {
        Webhook {
            id: self.id,
            url: self.url,
            events: self.events,
            format: WebhookFormat::parse(&self.format).unwrap_or_default(),
            signed: self.secret.is_some(),
            created_at: self.created_at,
            pending: self.pending,
            failed: self.failed,
        }
    }
}

const WEBHOOK_COLUMNS: &str = "w.id, w.url, w.events, w.secret, w.format, w.created_at, \
    (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id \
       AND d.delivered_at IS NULL AND d.failed_at IS NULL) AS pending, \
    (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id \
       AND d.failed_at IS NOT NULL) AS failed";

pub fn insert(conn: &mut PgConnection, new: &CheckedWebhook) -> QueryResult<Webhook> {
    let id: i64 = diesel::insert_into(webhooks::table)
        .values((
            webhooks::url.eq(&new.url),
            webhooks::events.eq(&new.events),
            webhooks::secret.eq(&new.secret),
            webhooks::format.eq(new.format.as_str()),
        ))
        .returning(webhooks::id)
        .get_result(conn)?;
    find(conn, id)?.ok_or(diesel::result::Error::NotFound)
}

pub fn list(conn: &mut PgConnection) -> QueryResult<Vec<Webhook>> {
    let rows: Vec<WebhookRow> = diesel::sql_query(format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks w ORDER BY w.id"
    ))
    .load(conn)?;
    Ok(rows.into_iter().map(WebhookRow::into_webhook).collect())
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<Webhook>> {
    let row: Option<WebhookRow> = diesel::sql_query(format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.id = $1"
    ))
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .optional()?;
    Ok(row.map(WebhookRow::into_webhook))
}

/// Deletes a webhook and its deliveries; 0 if there was none.
pub fn delete(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(webhooks::table.find(id)).execute(conn)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
struct DeliveryRow {
    id: i64,
    webhook_id: i64,
    event: String,
    subject_id: i64,
    occurred_at: DateTime<Utc>,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_status: Option<i32>,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
}

impl DeliveryRow {
    fn into_delivery(self) -> Delivery {
        let state = if self.delivered_at.is_some() {
            DeliveryState::Delivered
        } else if self.failed_at.is_some() {
            DeliveryState::Failed
        } else {
            DeliveryState::Pending
        };
        Delivery {
            id: self.id,
            webhook_id: self.webhook_id,
            event: self.event,
            subject_id: self.subject_id,
            occurred_at: self.occurred_at,
            state,
            attempts: self.attempts,
            last_status: self.last_status,
            last_error: self.last_error,
            next_attempt_at: (state == DeliveryState::Pending).then_some(self.next_attempt_at),
            delivered_at: self.delivered_at,
            failed_at: self.failed_at,
        }
    }
}

/// A webhook's latest deliveries, newest first.
pub fn deliveries(
    conn: &mut PgConnection,
    webhook_id: i64,
    limit: i64,
) -> QueryResult<Vec<Delivery>> {
    let rows: Vec<DeliveryRow> = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(DeliveryRow::into_delivery).collect())
}

/// A delivery taken for one attempt.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub claim: i64,
    #[diesel(sql_type = Text)]
    pub event: String,
    #[diesel(sql_type = BigInt)]
    pub subject_id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub body: Option<String>,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub secret: Option<String>,
    #[diesel(sql_type = Text)]
    pub format: String,
}

/// Takes up to `limit` due deliveries for one attempt each: counts the
/// attempt and moves their next attempt `lease_secs` away, so that no
/// other sender takes them while this one tries (a sender that dies
/// mid-attempt leaves them to be tried again once the lease is over).
pub fn claim_due(
    conn: &mut PgConnection,
    limit: i64,
    lease_secs: f64,
) -> QueryResult<Vec<Claimed>> {
    diesel::sql_query(
        "UPDATE webhook_deliveries d SET \
           claim = nextval('webhook_claims'), attempts = d.attempts + 1, \
           next_attempt_at = now() + make_interval(secs => $2) \
         FROM webhooks w \
         WHERE w.id = d.webhook_id AND d.id IN ( \
           SELECT id FROM webhook_deliveries \
           WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now() \
           ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING d.id, d.claim, d.event, d.subject_id, d.occurred_at, d.body, d.attempts, \
           w.url, w.secret, w.format",
    )
    .bind::<BigInt, _>(limit)
    .bind::<Double, _>(lease_secs)
    .load(conn)
}

/// Keeps the body of a delivery's first attempt, so that every retry sends
/// the same bytes; answers the body kept (another sender's, if it was first).
pub fn keep_body(conn: &mut PgConnection, id: i64, body: &str) -> QueryResult<String> {
    diesel::update(
        webhook_deliveries::table
            .find(id)
            .filter(webhook_deliveries::body.is_null()),
    )
    .set(webhook_deliveries::body.eq(body))
    .execute(conn)?;
    webhook_deliveries::table
        .find(id)
        .select(webhook_deliveries::body)
        .first::<Option<String>>(conn)
        .map(|kept| kept.unwrap_or_else(|| body.to_string()))
}

/// The receiver took it. False if the claim was lost meanwhile.
pub fn delivered(conn: &mut PgConnection, id: i64, claim: i64, status: i32) -> QueryResult<bool> {
    diesel::update(
        webhook_deliveries::table
            .find(id)
            .filter(webhook_deliveries::claim.eq(claim)),
    )
    .set((
        webhook_deliveries::delivered_at.eq(diesel::dsl::now),
        webhook_deliveries::last_status.eq(status),
        webhook_deliveries::last_error.eq(None::<String>),
        webhook_deliveries::claim.eq(None::<i64>),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

/// The attempt failed: tried again in `retry_in_secs`, unless that is
/// past `give_up_secs` after the event, when it is given up. Answers
/// whether it was given up.
pub fn attempt_failed(
    conn: &mut PgConnection,
    id: i64,
    claim: i64,
    status: Option<i32>,
    error: &str,
    retry_in_secs: f64,
    give_up_secs: f64,
) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Outcome {
        #[diesel(sql_type = Bool)]
        given_up: bool,
    }
    use diesel::sql_types::Bool;
    let outcome: Option<Outcome> = diesel::sql_query(
        "UPDATE webhook_deliveries SET \
           claim = NULL, last_status = $3, last_error = $4, \
           next_attempt_at = now() + make_interval(secs => $5), \
           failed_at = CASE WHEN now() + make_interval(secs => $5) \
                             > occurred_at + make_interval(secs => $6) THEN now() END \
         WHERE id = $1 AND claim = $2 \
         RETURNING failed_at IS NOT NULL AS given_up",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(claim)
    .bind::<Nullable<Integer>, _>(status)
    .bind::<Text, _>(error)
    .bind::<Double, _>(retry_in_secs)
    .bind::<Double, _>(give_up_secs)
    .get_result(conn)
    .optional()?;
    Ok(outcome.is_some_and(|o| o.given_up))
}

/// How long until the next delivery is due (zero if one is), if any waits.
pub fn next_due_in(conn: &mut PgConnection) -> QueryResult<Option<f64>> {
    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = Nullable<Double>)]
        secs: Option<f64>,
    }
    // Not `greatest(0, …)` in SQL: it skips a NULL and would say "due now"
    // of an empty outbox, and the sender would poll it 50 times a second.
    diesel::sql_query(
        "SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 AS secs \
         FROM webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL",
    )
    .get_result::<Due>(conn)
    .map(|d| d.secs.map(|secs| secs.max(0.0)))
}

/// Writes a `reservation.expiring` delivery for each active reservation
/// ending within `window_secs` whose end was not announced yet, in one
/// statement: each end is announced once, by whichever instance is first.
pub fn announce_expiring(conn: &mut PgConnection, window_secs: f64) -> QueryResult<usize> {
    diesel::sql_query(
        "WITH due AS ( \
           INSERT INTO reservation_expiry_notices (reservation_id, expires_at) \
           SELECT id, expires_at FROM reservations \
           WHERE state = 'active' AND expires_at > now() \
             AND expires_at <= now() + make_interval(secs => $1) \
           ON CONFLICT DO NOTHING RETURNING reservation_id) \
         INSERT INTO webhook_deliveries (webhook_id, event, subject_id) \
         SELECT w.id, 'reservation.expiring', due.reservation_id \
         FROM due CROSS JOIN webhooks w WHERE 'reservation.expiring' = ANY (w.events)",
    )
    .bind::<Double, _>(window_secs)
    .execute(conn)
}
