//! `/api/tests/history`, `/api/insights` and environment health: how tests
//! and environments behaved over time.

use actix_web::{web, HttpResponse};
use shared::{
    ApiErrorBody, EnvironmentHealth, HistoryItem, HistoryQuery, Insights, InsightsQuery,
    PassedElsewhere,
};
use std::time::Duration;
use tokio::sync::SemaphorePermit;

use crate::http::blocking::with_db;
use crate::http::error::ApiError;
use crate::http::state::{heavy_read_permits, AppState};
use crate::service::{health, insights};

/// How long an expensive read waits for its turn before it is refused.
const TURN_PATIENCE: Duration = Duration::from_secs(10);

/// A turn for an expensive read on up to `connections` connections,
/// waited for without holding one, with how many it may use (fewer when
/// all the turns together are fewer); 429 if none comes in time.
async fn heavy_read_turn(
    state: &AppState,
    connections: u32,
) -> Result<(SemaphorePermit<'_>, u32), ApiError> {
    let permits = connections.min(heavy_read_permits(state.config.db_pool_size));
    match tokio::time::timeout(TURN_PATIENCE, state.heavy_reads.acquire_many(permits)).await {
        Ok(Ok(permit)) => Ok((permit, permits)),
        _ => Err(ApiError::TooMany(
            "too many history and insight requests at once; try again in a moment".into(),
        )),
    }
}

/// Registered before the catalog's `/api/tests/{path}`, which would
/// otherwise take `history` for a file name.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/tests/history").route(web::get().to(history)))
        .service(web::resource("/api/insights").route(web::get().to(insights)))
        .service(
            web::resource("/api/insights/environments").route(web::get().to(environment_health)),
        )
        .service(
            web::resource("/api/runs/{id}/passed-elsewhere").route(web::get().to(passed_elsewhere)),
        );
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
    let _turn = heavy_read_turn(&state, 1).await?;
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
    let days = query.days().map_err(ApiError::BadRequest)?;
    let (_turn, connections) = heavy_read_turn(&state, 2).await?;
    let (flaky, (failing, slowest)) = if connections < 2 {
        // A pool too small for two turns: one half after the other.
        with_db(&state.pool, move |conn| {
            Ok((
                insights::flaky(conn, days)?,
                insights::failing_and_slowest(conn, days)?,
            ))
        })
        .await?
    } else {
        // Two halves that need nothing of each other, each on a
        // connection of its own, side by side: the answer takes as long
        // as the longer one. Both are awaited, even when one fails, so
        // that the turn is held until both connections are back.
        let (flaky, ranked) = futures_util::future::join(
            with_db(&state.pool, move |conn| insights::flaky(conn, days)),
            with_db(&state.pool, move |conn| {
                insights::failing_and_slowest(conn, days)
            }),
        )
        .await;
        (flaky?, ranked?)
    };
    Ok(HttpResponse::Ok().json(Insights {
        flaky,
        failing,
        slowest,
    }))
}

/// Each environment's health over the last days, least healthy first.
#[utoipa::path(
    get,
    path = "/api/insights/environments",
    tag = "insights",
    params(InsightsQuery),
    responses(
        (status = 200, description = "Every environment, least healthy first", body = Vec<EnvironmentHealth>),
        (status = 400, description = "A bad number of days", body = ApiErrorBody),
    )
)]
async fn environment_health(
    state: web::Data<AppState>,
    query: web::Query<InsightsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    query.days().map_err(ApiError::BadRequest)?;
    let _turn = heavy_read_turn(&state, 1).await?;
    let health = with_db(&state.pool, move |conn| health::environments(conn, &query)).await?;
    Ok(HttpResponse::Ok().json(health))
}

/// For each failed or errored test of a run, the other environments it
/// passed on over the last days (7 unless given).
#[utoipa::path(
    get,
    path = "/api/runs/{id}/passed-elsewhere",
    tag = "insights",
    params(("id" = i64, Path, description = "The run"), InsightsQuery),
    responses(
        (status = 200, description = "One entry per failed or errored test, by node id", body = Vec<PassedElsewhere>),
        (status = 400, description = "A bad number of days", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
    )
)]
async fn passed_elsewhere(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<InsightsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let query = query.into_inner();
    query.days().map_err(ApiError::BadRequest)?;
    let _turn = heavy_read_turn(&state, 1).await?;
    let answer = with_db(&state.pool, move |conn| {
        health::passed_elsewhere(conn, id, &query)
    })
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}
