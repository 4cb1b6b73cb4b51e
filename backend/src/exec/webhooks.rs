//! The webhook sender: takes due deliveries from the outbox, POSTs each to
//! its URL (signed with the webhook's secret), and records the answer;
//! failures are retried with exponential back-off and jitter until a day
//! after the event, then given up. Many deliveries are in flight at once,
//! each bounded by a time-out, so that a slow receiver holds up nobody
//! else. Database work runs on the blocking pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header;
use diesel::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::db::webhooks::Claimed;
use crate::db::{self, PgPool};

/// How deliveries are sent and retried.
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// The longest one attempt may take, connecting included.
    pub timeout: Duration,
    /// The wait after the first failure; it doubles with each one after.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_cap: Duration,
    /// How long after its event a delivery is given up.
    pub give_up_after: Duration,
    /// How long before a reservation's end `reservation.expiring` is sent.
    pub expiring_window: Duration,
}

/// Deliveries in flight at once, per instance.
const MAX_IN_FLIGHT: usize = 16;
/// The longest the sender sleeps before it looks at the outbox again.
const MOST_IDLE: Duration = Duration::from_secs(1);

/// Sends deliveries until the process ends.
pub async fn deliver_forever(pool: PgPool, settings: DeliverySettings) {
    let client = awc::Client::builder()
        .connector(awc::Connector::new().timeout(settings.timeout))
        .timeout(settings.timeout)
        .disable_redirects()
        .add_default_header((header::USER_AGENT, "test-executor-webhooks"))
        .finish();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // The claim outlives every attempt: nobody else takes a delivery while
    // it may still be in flight here.
    let lease_secs = (settings.timeout * 2 + Duration::from_secs(10)).as_secs_f64();
    let mut last_sweep: Option<Instant> = None;
    loop {
        if last_sweep.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            last_sweep = Some(Instant::now());
            let window = settings.expiring_window.as_secs_f64();
            let announced = blocking(&pool, move |conn| {
                db::webhooks::announce_expiring(conn, window)
            })
            .await;
            if let Err(e) = announced {
                tracing::debug!(error = %e, "cannot look for reservations about to end");
            }
        }
        let free = slots.available_permits();
        let mut claimed_all = false;
        if free > 0 {
            match blocking(&pool, move |conn| claim_and_render(conn, free, lease_secs)).await {
                Ok(claimed) => {
                    claimed_all = claimed.len() == free;
                    for delivery in claimed {
                        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                            return;
                        };
                        let (client, pool) = (client.clone(), pool.clone());
                        actix_web::rt::spawn(async move {
                            attempt(&client, &pool, &settings, delivery).await;
                            drop(slot);
                        });
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cannot claim webhook deliveries"),
            }
        }
        if claimed_all {
            // More may be due: as soon as a slot is free.
            if let Ok(slot) = Arc::clone(&slots).acquire_owned().await {
                drop(slot);
            }
            continue;
        }
        let due_in = blocking(&pool, db::webhooks::next_due_in)
            .await
            .ok()
            .flatten()
            .map_or(MOST_IDLE, |secs| Duration::from_secs_f64(secs.max(0.0)));
        actix_web::rt::time::sleep(due_in.clamp(Duration::from_millis(20), MOST_IDLE)).await;
    }
}

/// Runs `f` with a pooled connection on the blocking pool.
async fn blocking<T, F>(pool: &PgPool, f: F) -> Result<T, String>
where
    F: FnOnce(&mut PgConnection) -> QueryResult<T> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        f(&mut conn).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Claims up to `limit` due deliveries and gives each its body: the one
/// kept from an earlier attempt, else rendered now and kept.
fn claim_and_render(
    conn: &mut PgConnection,
    limit: usize,
    lease_secs: f64,
) -> QueryResult<Vec<Claimed>> {
    let mut claimed = db::webhooks::claim_due(conn, limit as i64, lease_secs)?;
    for delivery in &mut claimed {
        if delivery.body.is_none() {
            let body = render(conn, delivery)?;
            delivery.body = Some(db::webhooks::keep_body(conn, delivery.id, &body)?);
        }
    }
    Ok(claimed)
}

/// The body of a delivery: `{"event", "at", <subject>}` and, for Slack,
/// `"text"`.
fn render(conn: &mut PgConnection, delivery: &Claimed) -> QueryResult<String> {
    let (key, subject, text) = match delivery.event.as_str() {
        "run.finished" | "run.failed" => {
            let run = db::runs::get(conn, delivery.subject_id)?;
            let text = run.as_ref().map(run_text);
            ("run", run.map(|r| json!(r)), text)
        }
        "environment.free" => {
            let environment = db::environments::get(conn, delivery.subject_id as i32)?;
            let text = environment
                .as_ref()
                .map(|e| format!("Environment {} ({}) is free", e.id, e.name));
            ("environment", environment.map(|e| json!(e)), text)
        }
        _ => {
            let now = db::reservations::now(conn)?;
            let reservation = db::reservations::find(conn, delivery.subject_id)?
                .map(|row| row.into_reservation(None, now));
            let text = reservation.as_ref().map(|r| {
                let until = r
                    .expires_at
                    .map(|at| format!(" at {}", at.to_rfc3339()))
                    .unwrap_or_default();
                format!(
                    "Reservation {} of environment {} by {} ends soon{until}",
                    r.id, r.environment_id, r.owner
                )
            });
            ("reservation", reservation.map(|r| json!(r)), text)
        }
    };
    let subject = subject.unwrap_or_else(|| json!({ "id": delivery.subject_id }));
    let mut body = json!({
        "event": delivery.event,
        "at": delivery.occurred_at,
        key: subject,
    });
    if delivery.format == "slack" {
        let text = text.unwrap_or_else(|| format!("{} {}", delivery.event, delivery.subject_id));
        body["text"] = Value::String(text);
    }
    Ok(body.to_string())
}

fn run_text(run: &shared::Run) -> String {
    let environment = run
        .environment_id
        .map(|id| format!("environment {id}"))
        .or_else(|| run.environment_label.as_ref().map(|l| format!("pool {l}")))
        .unwrap_or_else(|| "no environment".into());
    let summary = &run.summary;
    let counts = match (summary.total, summary.passed, summary.failed) {
        (Some(total), passed, failed) => format!(
            " ({} passed, {} failed of {total})",
            passed.unwrap_or(0),
            failed.unwrap_or(0) + summary.errors.unwrap_or(0)
        ),
        _ => String::new(),
    };
    let reason = run
        .status_reason
        .as_ref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    format!(
        "Run {} by {} on {environment}: {}{counts}{reason}",
        run.id, run.username, run.status
    )
}

/// `sha256=<hex HMAC-SHA256 of body with secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before attempt `attempts + 1`: the base doubled per failure so
/// far, capped, half of it fixed and half random, so that the retries of
/// many deliveries (one receiver back up) spread out.
pub fn retry_delay(settings: &DeliverySettings, attempts: i32) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
    let full = settings
        .retry_base
        .saturating_mul(1u32 << doublings)
        .min(settings.retry_cap);
    full / 2 + full.mul_f64(fastrand::f64() / 2.0)
}

/// One attempt: send, then record the answer while the claim holds.
async fn attempt(
    client: &awc::Client,
    pool: &PgPool,
    settings: &DeliverySettings,
    delivery: Claimed,
) {
    let body = delivery.body.clone().unwrap_or_default();
    let mut request = client
        .post(delivery.url.as_str())
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header(("X-Executor-Event", delivery.event.as_str()))
        .insert_header(("X-Executor-Delivery", delivery.id.to_string()));
    if let Some(secret) = &delivery.secret {
        request =
            request.insert_header(("X-Executor-Signature", signature(secret, body.as_bytes())));
    }
    let answer: Result<u16, (Option<u16>, String)> = match request.send_body(body).await {
        Ok(response) if response.status().is_success() => Ok(response.status().as_u16()),
        Ok(response) => Err((
            Some(response.status().as_u16()),
            format!("the receiver answered {}", response.status()),
        )),
        Err(e) => Err((None, e.to_string())),
    };
    let (id, claim) = (delivery.id, delivery.claim);
    match answer {
        Ok(status) => {
            let recorded = blocking(pool, move |conn| {
                db::webhooks::delivered(conn, id, claim, i32::from(status))
            })
            .await;
            match recorded {
                Ok(true) => {
                    tracing::info!(delivery_id = id, event = %delivery.event, url = %delivery.url,
                    status, attempts = delivery.attempts, "webhook delivered")
                }
                Ok(false) => tracing::warn!(
                    delivery_id = id,
                    "webhook delivered after its claim ran out"
                ),
                Err(e) => {
                    tracing::warn!(delivery_id = id, error = %e, "webhook delivered but not recorded; it may be sent again")
                }
            }
        }
        Err((status, error)) => {
            let retry_in = retry_delay(settings, delivery.attempts).as_secs_f64();
            let give_up = settings.give_up_after.as_secs_f64();
            let logged = error.clone();
            let recorded = blocking(pool, move |conn| {
                db::webhooks::attempt_failed(
                    conn,
                    id,
                    claim,
                    status.map(i32::from),
                    &error,
                    retry_in,
                    give_up,
                )
            })
            .await;
            match recorded {
                Ok(true) => {
                    tracing::warn!(delivery_id = id, event = %delivery.event, url = %delivery.url,
                    attempts = delivery.attempts, error = %logged, "webhook delivery given up")
                }
                Ok(false) => {
                    tracing::info!(delivery_id = id, event = %delivery.event, url = %delivery.url,
                    attempts = delivery.attempts, error = %logged, retry_in_secs = retry_in, "webhook delivery failed; will retry")
                }
                Err(e) => {
                    tracing::warn!(delivery_id = id, error = %e, "webhook failure not recorded; retried after its claim")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeliverySettings {
        DeliverySettings {
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(86_400),
            expiring_window: Duration::from_secs(300),
        }
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_the_cap() {
        let s = settings();
        for _ in 0..50 {
            let first = retry_delay(&s, 1);
            assert!(
                (Duration::from_secs(5)..=Duration::from_secs(10)).contains(&first),
                "{first:?}"
            );
            let fourth = retry_delay(&s, 4);
            assert!(
                (Duration::from_secs(40)..=Duration::from_secs(80)).contains(&fourth),
                "{fourth:?}"
            );
            let late = retry_delay(&s, 40);
            assert!(
                (Duration::from_secs(1800)..=Duration::from_secs(3600)).contains(&late),
                "{late:?}"
            );
        }
    }

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
