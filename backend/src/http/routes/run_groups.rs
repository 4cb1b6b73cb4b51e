//! `/api/run-groups`: one suite split into shards over a pool.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use shared::{ApiErrorBody, NewRunGroup, RunGroup};

use crate::http::blocking::{off_thread, with_db};
use crate::http::conditional::{conditional_cached, CacheKey};
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::state::AppState;
use crate::service::identity::{self, Caller};
use crate::service::run_groups;

/// The newest groups the list shows.
const LISTED_GROUPS: i64 = 50;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/run-groups")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(web::resource("/api/run-groups/{id}").route(web::get().to(get)))
    .service(web::resource("/api/run-groups/{id}/cancel").route(web::post().to(cancel)));
}

/// Split tests into shards over a pool: one run per shard.
#[utoipa::path(
    post,
    path = "/api/run-groups",
    tag = "runs",
    request_body(content = NewRunGroup, content_type = "application/json"),
    responses(
        (status = 201, description = "The group, its shards queued", body = RunGroup,
            headers(("Location" = String, description = "`/api/run-groups/{id}`"))),
        (status = 400, description = "Malformed JSON, not JSON, not an object", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
        (status = 429, description = "MAX_QUEUED_RUNS runs are queued already", body = ApiErrorBody),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    new: JsonBody<NewRunGroup>,
) -> Result<HttpResponse, ApiError> {
    let mut new = new.into_inner();
    identity::claim_username(&caller, state.config.auth.enabled, &mut new.username)?;
    let root = state.tests_root.clone();
    let request = off_thread(move || run_groups::check(&root, &new)).await?;
    let root = state.tests_root.clone();
    let max_queued = state.config.max_queued_runs;
    let group = with_db(&state.pool, move |conn| {
        let group = run_groups::create(conn, &root, max_queued, request, &caller)?;
        identity::audit(
            conn,
            &caller,
            "run.create",
            format!("run group {}", group.id),
            format!("{} shards", group.runs.len()),
        )?;
        Ok(group)
    })
    .await?;
    tracing::info!(run_group_id = group.id, shards = group.runs.len(),
        label = %group.environment_label, username = %group.username, "run group queued");
    state.scheduler.wake();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/run-groups/{}", group.id)))
        .json(group))
}

/// The newest run groups, newest first.
#[utoipa::path(
    get,
    path = "/api/run-groups",
    tag = "runs",
    responses(
        (status = 200, description = "The 50 newest run groups", body = Vec<RunGroup>,
            headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
    )
)]
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let key = CacheKey::of(&req, &());
    conditional_cached(&state, &req, key, |conn| {
        run_groups::list(conn, LISTED_GROUPS)
    })
    .await
}

/// One run group: its shards' latest runs and their aggregate.
#[utoipa::path(
    get,
    path = "/api/run-groups/{id}",
    tag = "runs",
    params(("id" = i64, Path, description = "Run group id", example = 1)),
    responses(
        (status = 200, description = "The group", body = RunGroup, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run group", body = ApiErrorBody),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = CacheKey::of(&req, &());
    conditional_cached(&state, &req, key, move |conn| run_groups::get(conn, id)).await
}

/// Cancel every shard still queued or running.
#[utoipa::path(
    post,
    path = "/api/run-groups/{id}/cancel",
    tag = "runs",
    params(("id" = i64, Path, description = "Run group id", example = 1)),
    responses(
        (status = 200, description = "The group; its running shards are being stopped", body = RunGroup),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run group", body = ApiErrorBody),
    )
)]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let running = with_db(&state.pool, move |conn| {
        let running = run_groups::cancel(conn, id, &caller)?;
        identity::audit(conn, &caller, "run.cancel", format!("run group {id}"), "")?;
        Ok(running)
    })
    .await?;
    for run_id in running {
        state.scheduler.cancel_local(run_id);
    }
    state.scheduler.wake();
    tracing::info!(run_group_id = id, "run group cancelled");
    let group = with_db(&state.pool, move |conn| run_groups::get(conn, id)).await?;
    Ok(HttpResponse::Ok().json(group))
}
