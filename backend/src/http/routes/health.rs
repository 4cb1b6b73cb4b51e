//! `/api/health`: whether the service and its database answer.

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use shared::Health;

use crate::http::blocking::with_db;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::service::ServiceError;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/health").route(web::get().to(health)));
}

/// Whether the service and its database answer.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "service",
    responses(
        (status = 200, description = "Up, with its database", body = Health),
        (status = 503, description = "The database is unreachable; `error` is the error body of every 5xx",
            body = Health),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let version = env!("CARGO_PKG_VERSION").to_string();
    let reachable = with_db(&state.pool, |conn| {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map_err(ServiceError::from)
    })
    .await;
    match reachable {
        Ok(_) => HttpResponse::Ok().json(Health {
            status: "ok".into(),
            database: "ok".into(),
            version,
            error: None,
        }),
        Err(e) => {
            let error = ApiError::Unavailable(e.to_string()).body();
            // The health fields and the error body of every 5xx, together.
            HttpResponse::ServiceUnavailable().json(Health {
                status: "unavailable".into(),
                database: "unreachable".into(),
                version,
                error: Some(error.error),
            })
        }
    }
}
