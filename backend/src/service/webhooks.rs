//! Webhooks: subscribe a URL to events, list, delete, read the delivery
//! log. Deliveries themselves are sent by `exec::webhooks`.

use diesel::prelude::*;
use shared::validate::Fields;
use shared::{Delivery, NewWebhook, Webhook};

use super::{missing, ServiceError};
use crate::db;

/// The most deliveries the log shows, newest first.
pub const DELIVERY_LOG_LENGTH: i64 = 200;

pub fn create(conn: &mut PgConnection, new: &NewWebhook) -> Result<Webhook, ServiceError> {
    let mut fields = Fields::default();
    let checked = new.check(&mut fields);
    let Some(checked) = checked.filter(|_| fields.is_empty()) else {
        return Err(ServiceError::invalid(fields.into_inner()));
    };
    let webhook = db::webhooks::insert(conn, &checked)?;
    tracing::info!(webhook_id = webhook.id, url = %webhook.url, events = ?webhook.events, "webhook added");
    Ok(webhook)
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<Webhook>, ServiceError> {
    Ok(db::webhooks::list(conn)?)
}

pub fn get(conn: &mut PgConnection, id: i64) -> Result<Webhook, ServiceError> {
    db::webhooks::find(conn, id)?.ok_or_else(|| missing(format_args!("webhook {id}")))
}

/// Deletes a webhook; its pending deliveries go with it.
pub fn delete(conn: &mut PgConnection, id: i64) -> Result<(), ServiceError> {
    if db::webhooks::delete(conn, id)? == 0 {
        return Err(missing(format_args!("webhook {id}")));
    }
    tracing::info!(webhook_id = id, "webhook deleted");
    Ok(())
}

/// A webhook's latest deliveries, newest first.
pub fn deliveries(conn: &mut PgConnection, id: i64) -> Result<Vec<Delivery>, ServiceError> {
    get(conn, id)?;
    Ok(db::webhooks::deliveries(conn, id, DELIVERY_LOG_LENGTH)?)
}
