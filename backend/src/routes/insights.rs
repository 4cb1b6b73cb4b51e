//! `/api/tests/history` and `/api/insights`: how tests behaved over time.

use actix_web::{web, HttpRequest, HttpResponse};
use shared::{ApiErrorBody, HistoryItem, Insights};

use super::{query_pairs, query_param};
use crate::db::insights::{self, HistoryOf};
use crate::db::run_blocking;
use crate::error::ApiError;
use crate::state::AppState;

const DEFAULT_HISTORY: i64 = 50;
const MAX_HISTORY: i64 = 500;
const MAX_DAYS: i32 = 366;

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
    params(
        ("nodeid" = Option<String>, Query, description = "One test's node id (give this or `path`)"),
        ("path" = Option<String>, Query, description = "A test file: every test of it (give this or `nodeid`)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "How many results, 50 unless given"),
    ),
    responses(
        (status = 200, description = "Results, newest first", body = Vec<HistoryItem>),
        (status = 400, description = "Neither or both of nodeid and path, or a bad limit", body = ApiErrorBody),
    )
)]
async fn history(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let text = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_string())
            .filter(|value| !value.is_empty())
    };
    let of = match (text("nodeid"), text("path")) {
        (Some(nodeid), None) => HistoryOf::Test(nodeid),
        (None, Some(path)) => HistoryOf::File(path.trim_end_matches('/').to_string()),
        _ => {
            return Err(ApiError::BadRequest(
                "give either nodeid (one test) or path (every test of a file)".into(),
            ))
        }
    };
    let limit = query_param::<i64>(&pairs, "limit", "a whole number from 1 to 500")?
        .unwrap_or(DEFAULT_HISTORY);
    if !(1..=MAX_HISTORY).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be from 1 to {MAX_HISTORY}, not {limit}"
        )));
    }
    let items = run_blocking(&state.pool, move |conn| insights::history(conn, &of, limit)).await?;
    Ok(HttpResponse::Ok().json(items))
}

/// Flaky, failing and slowest tests over the last days.
#[utoipa::path(
    get,
    path = "/api/insights",
    tag = "insights",
    params(("days" = Option<i32>, Query, minimum = 1, maximum = 366, description = "The window, 7 days unless given")),
    responses(
        (status = 200, description = "The insights", body = Insights),
        (status = 400, description = "A bad number of days", body = ApiErrorBody),
    )
)]
async fn insights(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let days =
        query_param::<i32>(&pairs, "days", "a whole number of days from 1 to 366")?.unwrap_or(7);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::BadRequest(format!(
            "days must be from 1 to {MAX_DAYS}, not {days}"
        )));
    }
    let insights = run_blocking(&state.pool, move |conn| insights::insights(conn, days)).await?;
    Ok(HttpResponse::Ok().json(insights))
}
