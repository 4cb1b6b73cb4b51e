//! `/api/health`: whether the service and its database answer.

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde_json::json;
use shared::Health;

use crate::db::run_blocking;
use crate::error::ApiError;
use crate::state::AppState;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/health").route(web::get().to(health)));
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let version = env!("CARGO_PKG_VERSION").to_string();
    let reachable = run_blocking(&state.pool, |conn| {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map_err(ApiError::from)
    })
    .await;
    match reachable {
        Ok(_) => HttpResponse::Ok().json(Health {
            status: "ok".into(),
            database: "ok".into(),
            version,
        }),
        Err(e) => {
            let error = ApiError::Unavailable(e.to_string()).body();
            // The health fields and the error body of every 5xx, together.
            HttpResponse::ServiceUnavailable().json(json!({
                "status": "unavailable",
                "database": "unreachable",
                "version": version,
                "error": error.error,
            }))
        }
    }
}
