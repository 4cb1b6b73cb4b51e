//! Webhooks and their delivery logs.

use gloo_net::http::Request;
use shared::{Delivery, NewWebhook, Webhook};

use super::{get, request, request_empty, with_json, ApiError};

pub async fn list() -> Result<Vec<Webhook>, ApiError> {
    request(get("/api/webhooks")).await
}

pub async fn create(new: &NewWebhook) -> Result<Webhook, ApiError> {
    request(with_json(Request::post("/api/webhooks"), new)).await
}

pub async fn delete(id: i64) -> Result<(), ApiError> {
    request_empty(Request::delete(&format!("/api/webhooks/{id}")).build()).await
}

pub async fn deliveries(id: i64) -> Result<Vec<Delivery>, ApiError> {
    request(get(&format!("/api/webhooks/{id}/deliveries"))).await
}
