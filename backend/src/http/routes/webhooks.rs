//! `/api/webhooks`: subscriptions to events, and each one's delivery log.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use shared::{ApiErrorBody, Delivery, NewWebhook, Webhook};

use crate::http::blocking::with_db;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::state::AppState;
use crate::service::identity::{self, Caller};
use crate::service::webhooks;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/webhooks")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(
        web::resource("/api/webhooks/{id}")
            .route(web::get().to(get))
            .route(web::delete().to(delete)),
    )
    .service(web::resource("/api/webhooks/{id}/deliveries").route(web::get().to(deliveries)));
}

/// Subscribe a URL to events.
#[utoipa::path(
    post,
    path = "/api/webhooks",
    tag = "webhooks",
    request_body(content = NewWebhook, content_type = "application/json"),
    responses(
        (status = 201, description = "The webhook (its secret is never shown)", body = Webhook,
            headers(("Location" = String, description = "`/api/webhooks/{id}`"))),
        (status = 400, description = "Malformed JSON, not JSON, not an object", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    new: JsonBody<NewWebhook>,
) -> Result<HttpResponse, ApiError> {
    let new = new.into_inner();
    let webhook = with_db(&state.pool, move |conn| {
        let webhook = webhooks::create(conn, &new)?;
        // The URL may carry a secret of its own (Slack's do): not logged.
        let target = format!("webhook {}", webhook.id);
        identity::audit(
            conn,
            &caller,
            "webhook.create",
            target,
            webhook.events.join(" "),
        )?;
        Ok(webhook)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/webhooks/{}", webhook.id)))
        .json(webhook))
}

/// Every webhook, by id.
#[utoipa::path(
    get,
    path = "/api/webhooks",
    tag = "webhooks",
    responses((status = 200, description = "The webhooks", body = Vec<Webhook>))
)]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = with_db(&state.pool, |conn| webhooks::list(conn)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One webhook.
#[utoipa::path(
    get,
    path = "/api/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", example = 1)),
    responses(
        (status = 200, description = "The webhook", body = Webhook),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such webhook", body = ApiErrorBody),
    )
)]
pub async fn get(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let webhook = with_db(&state.pool, move |conn| webhooks::get(conn, id)).await?;
    Ok(HttpResponse::Ok().json(webhook))
}

/// Delete a webhook; deliveries not sent yet are dropped.
#[utoipa::path(
    delete,
    path = "/api/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", example = 1)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such webhook", body = ApiErrorBody),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    with_db(&state.pool, move |conn| {
        webhooks::delete(conn, id)?;
        identity::audit(conn, &caller, "webhook.delete", format!("webhook {id}"), "")
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A webhook's delivery log: the latest 200 deliveries, newest first.
#[utoipa::path(
    get,
    path = "/api/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", example = 1)),
    responses(
        (status = 200, description = "The deliveries, newest first", body = Vec<Delivery>),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such webhook", body = ApiErrorBody),
    )
)]
pub async fn deliveries(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let log = with_db(&state.pool, move |conn| webhooks::deliveries(conn, id)).await?;
    Ok(HttpResponse::Ok().json(log))
}
