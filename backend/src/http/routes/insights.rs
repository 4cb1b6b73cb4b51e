//! `/api/tests/history` and `/api/insights`: how tests behaved over time.

use actix_web::{web, HttpResponse};
use shared::{ApiErrorBody, HistoryItem, HistoryQuery, Insights, InsightsQuery};
use std::time::Duration;
use tokio::sync::SemaphorePermit;

use crate::http::blocking::with_db;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::service::insights;

/// How long an expensive read waits for its turn before it is refused.
const TURN_PATIENCE: Duration = Duration::from_secs(10);

/// A turn for an expensive read, waited for without holding a connection;
/// 429 if none comes in time.
async fn heavy_read_turn(state: &AppState) -> Result<SemaphorePermit<'_>, ApiError> {
    match tokio::time::timeout(TURN_PATIENCE, state.heavy_reads.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ApiError::TooMany(
            "too many history and insight requests at once; try again in a moment".into(),
        )),
    }
}

/// Registered before the catalog's `/api/tests/{path}`, which would
/// otherwise take `history` for a file name.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/tests/history").route(web::get().to(history)))
        .service(web::resource("/api/insights").route(web::get().to(insights)));
}

/// The newest results of one test, or of every test of a file.
#[utoipa::path(
    get,
    path = "/api/tests/history",
    tag = "insights",
    params(HistoryQuery),
    responses(
        (status = 200, description = "Results, newest first", body = Vec<HistoryItem>),
        (status = 400, description = "Neither or both of nodeid and path, or a bad limit", body = ApiErrorBody),
    )
)]
async fn history(
    state: web::Data<AppState>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    // Checked before a connection is taken.
    insights::history_of(&query)?;
    let _turn = heavy_read_turn(&state).await?;
    let items = with_db(&state.pool, move |conn| insights::history(conn, &query)).await?;
    Ok(HttpResponse::Ok().json(items))
}

/// Flaky, failing and slowest tests over the last days.
#[utoipa::path(
    get,
    path = "/api/insights",
    tag = "insights",
    params(InsightsQuery),
    responses(
        (status = 200, description = "The insights", body = Insights),
        (status = 400, description = "A bad number of days", body = ApiErrorBody),
    )
)]
async fn insights(
    state: web::Data<AppState>,
    query: web::Query<InsightsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    query.days().map_err(ApiError::BadRequest)?;
    let _turn = heavy_read_turn(&state).await?;
    let insights = with_db(&state.pool, move |conn| insights::insights(conn, &query)).await?;
    Ok(HttpResponse::Ok().json(insights))
}
