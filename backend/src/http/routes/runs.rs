//! `/api/runs`: create, list, read, cancel and re-run test runs.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use shared::{
    ApiErrorBody, Artifact, CaseResult, LogChunk, LogQuery, NewRun, RerunQuery, Run, RunListQuery,
    RunPage,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::exec::scheduler::{Scheduler, StartTicket};
use crate::http::blocking::{with_db, with_db_after};
use crate::http::conditional::{conditional, conditional_cached, conditional_text, CacheKey};
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::state::AppState;
use crate::service::identity::{self, Caller};
use crate::service::runs::{self, Cancelled};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/runs")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(web::resource("/api/runs/{id}").route(web::get().to(get)))
    .service(web::resource("/api/runs/{id}/log").route(web::get().to(log)))
    .service(web::resource("/api/runs/{id}/log.txt").route(web::get().to(log_text)))
    .service(web::resource("/api/runs/{id}/cases").route(web::get().to(cases)))
    .service(web::resource("/api/runs/{id}/junit.xml").route(web::get().to(junit_xml)))
    .service(web::resource("/api/runs/{id}/cancel").route(web::post().to(cancel)))
    .service(web::resource("/api/runs/{id}/rerun").route(web::post().to(rerun)))
    .service(
        web::resource("/api/runs/{id}/pin")
            .route(web::post().to(pin))
            .route(web::delete().to(unpin)),
    )
    .service(web::resource("/api/runs/{id}/artifacts").route(web::get().to(artifacts)))
    .service(web::resource("/api/runs/{id}/artifacts/{path:.+}").route(web::get().to(artifact)));
}

/// Reports are saved, never shown inline: what tests print is not for the
/// browser to interpret.
fn attachment(file_name: String) -> header::ContentDisposition {
    header::ContentDisposition {
        disposition: header::DispositionType::Attachment,
        parameters: vec![header::DispositionParam::Filename(file_name)],
    }
}

/// A report served for saving, never shown inline by a browser.
fn as_attachment(mut response: HttpResponse, file_name: String) -> HttpResponse {
    use actix_web::http::header::TryIntoHeaderPair;
    if let Ok((name, value)) = (header::CONTENT_DISPOSITION, attachment(file_name)).try_into_pair()
    {
        response.headers_mut().insert(name, value);
    }
    response
}

fn created(run: Run) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/runs/{}", run.id)))
        .json(run)
}

/// Queue a run.
#[utoipa::path(
    post,
    path = "/api/runs",
    tag = "runs",
    request_body(content = NewRun, content_type = "application/json"),
    responses(
        (status = 201, description = "The run, queued", body = Run,
            headers(("Location" = String, description = "`/api/runs/{id}`"))),
        (status = 400, description = "Malformed JSON, not JSON, not an object", body = ApiErrorBody),
        (status = 403, description = "A viewer; or a protected environment the caller may not use", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 422, description = "Invalid values (a username other than the caller's); `fields` names each", body = ApiErrorBody),
        (status = 429, description = "MAX_QUEUED_RUNS runs are queued already", body = ApiErrorBody),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    new: JsonBody<NewRun>,
) -> Result<HttpResponse, ApiError> {
    let mut new = new.into_inner();
    identity::claim_username(&caller, state.config.auth.enabled, &mut new.username)?;
    // The catalog check reads the disk, so it runs off the async threads,
    // before a connection is taken.
    let check_root = state.tests_root.clone();
    let root = state.tests_root.clone();
    let max_queued = state.config.max_queued_runs;
    let scheduler = Arc::clone(&state.scheduler);
    let check = move || runs::check(&check_root, &new);
    let run = with_db_after(&state.pool, check, move |conn, request| {
        // A run that nothing is ahead of is claimed in the transaction
        // that queues it, and started here: no wait for the scheduler.
        let ticket = request
            .environment_id()
            .and_then(|id| scheduler.ticket_for_new_run(id));
        let claimed_at = Instant::now();
        let created = runs::create(
            conn,
            &root,
            max_queued,
            request,
            &caller,
            ticket.as_ref().map(StartTicket::claimer),
        )?;
        let run = created.run;
        tracing::info!(run_id = run.id, environment_id = run.environment_id, username = %run.username, "run queued");
        // Started (or handed to the scheduler) before anything else, and
        // on this thread: a client that hangs up loses nothing.
        match (created.claim, ticket) {
            (Some(claim), Some(ticket)) => scheduler.start(claim, claimed_at, ticket),
            (_, ticket) => {
                drop(ticket);
                wake_for_run(&scheduler, &run);
            }
        }
        identity::audit(
            conn,
            &caller,
            "run.create",
            format!("run {}", run.id),
            run.paths.join(" "),
        )?;
        Ok(run)
    })
    .await?;
    Ok(created(run))
}

/// A run for one environment is claimed on that environment alone; a
/// pool's run needs a look at every environment of the pool.
fn wake_for_run(scheduler: &Scheduler, run: &Run) {
    match run.environment_id {
        Some(environment_id) => scheduler.wake_for(environment_id),
        None => scheduler.wake(),
    }
}

/// List runs, newest first.
#[utoipa::path(
    get,
    path = "/api/runs",
    tag = "runs",
    params(RunListQuery),
    responses(
        (status = 200, description = "A page of runs", body = RunPage, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "A query parameter is not valid", body = ApiErrorBody),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<RunListQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut query = query.into_inner();
    let (page, per_page) = query.page_and_size().map_err(ApiError::BadRequest)?;
    (query.page, query.per_page) = (Some(page), Some(per_page));
    let key = CacheKey::of(&req, &query);
    conditional_cached(&state, &req, key, move |conn| {
        let (items, total) = runs::list(conn, &query)?;
        Ok(RunPage {
            items,
            total,
            page,
            per_page,
        })
    })
    .await
}

/// One run.
#[utoipa::path(
    get,
    path = "/api/runs/{id}",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1)),
    responses(
        (status = 200, description = "The run", body = Run, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = CacheKey::of(&req, &());
    conditional_cached(&state, &req, key, move |conn| runs::get(conn, id)).await
}

/// A run's log from a byte offset on, at most 1 MiB per answer.
#[utoipa::path(
    get,
    path = "/api/runs/{id}/log",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1), LogQuery),
    responses(
        (status = 200, description = "A slice of the log", body = LogChunk, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id or offset is not valid", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
    )
)]
pub async fn log(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<LogQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let offset = query.offset().map_err(ApiError::BadRequest)?;
    let key = CacheKey::of(&req, &[("offset", offset)]);
    conditional(&state, &req, key, move |conn| runs::log(conn, id, offset)).await
}

/// A run's whole log so far, as text (with pytest's ANSI colours).
#[utoipa::path(
    get,
    path = "/api/runs/{id}/log.txt",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1)),
    responses(
        (status = 200, description = "The log, as an attachment", body = String,
            content_type = "text/plain",
            headers(("ETag" = String), ("Content-Disposition" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
    )
)]
pub async fn log_text(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = CacheKey::of(&req, &());
    let response = conditional_text(
        &state,
        &req,
        key,
        "text/plain; charset=utf-8",
        move |conn| runs::log_text(conn, id),
    )
    .await?;
    Ok(as_attachment(response, format!("run-{id}.log.txt")))
}

/// A run's test cases.
#[utoipa::path(
    get,
    path = "/api/runs/{id}/cases",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1)),
    responses(
        (status = 200, description = "One entry per test case", body = Vec<CaseResult>,
            headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
    )
)]
pub async fn cases(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = CacheKey::of(&req, &());
    conditional_cached(&state, &req, key, move |conn| runs::cases(conn, id)).await
}

/// A finished run's JUnit XML report, as pytest wrote it: for CI systems
/// that show test results.
#[utoipa::path(
    get,
    path = "/api/runs/{id}/junit.xml",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1)),
    responses(
        (status = 200, description = "The report, as an attachment", body = String,
            content_type = "application/xml",
            headers(("ETag" = String), ("Content-Disposition" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run, or it has no report (not finished, or pytest wrote none)",
            body = ApiErrorBody),
    )
)]
pub async fn junit_xml(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = CacheKey::of(&req, &());
    let response = conditional_text(
        &state,
        &req,
        key,
        "application/xml; charset=utf-8",
        move |conn| runs::junit_xml(conn, id),
    )
    .await?;
    Ok(as_attachment(response, format!("run-{id}.junit.xml")))
}

/// Cancel a queued or running run.
#[utoipa::path(
    post,
    path = "/api/runs/{id}/cancel",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1)),
    responses(
        (status = 200, description = "The run: `cancelled` at once if it was queued; a running one once its process tree is gone", body = Run),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 403, description = "Another user's run, and the caller is not an admin", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
        (status = 409, description = "The run is already finished", body = ApiErrorBody),
    )
)]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    // Listening before asking, so that a run ending in between is not missed.
    let mut finished = state.scheduler.finished_runs();
    let outcome = with_db(&state.pool, move |conn| {
        let outcome = runs::cancel(conn, id, &caller)?;
        identity::audit(conn, &caller, "run.cancel", format!("run {id}"), "")?;
        Ok(outcome)
    })
    .await?;
    match outcome {
        Cancelled::AtOnce => {
            tracing::info!(run_id = id, "queued run cancelled");
            state.scheduler.wake();
        }
        Cancelled::Requested => {
            tracing::info!(run_id = id, "cancel requested");
            state.scheduler.cancel_local(id);
            // Answer once the process tree is gone, if that is quick; the
            // run's holder may be another instance, which hears of the
            // cancel at once (or at its next lease renewal).
            let deadline = Instant::now() + state.config.kill_grace * 3 + Duration::from_secs(5);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                if !finished.wait_for(id, left).await {
                    break;
                }
                let run = with_db(&state.pool, move |conn| runs::get(conn, id)).await?;
                if run.status.is_finished() {
                    return Ok(HttpResponse::Ok().json(run));
                }
            }
        }
    }
    let run = with_db(&state.pool, move |conn| runs::get(conn, id)).await?;
    Ok(HttpResponse::Ok().json(run))
}

/// Queue a run again: same user, environment and paths, or only its failed
/// and errored tests.
#[utoipa::path(
    post,
    path = "/api/runs/{id}/rerun",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1), RerunQuery),
    responses(
        (status = 201, description = "The new run, queued", body = Run,
            headers(("Location" = String, description = "`/api/runs/{id}`"))),
        (status = 400, description = "The id or failed_only is not valid", body = ApiErrorBody),
        (status = 403, description = "Another user's run, and the caller is not an admin", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
        (status = 422, description = "failed_only, and the run has no failed tests", body = ApiErrorBody),
        (status = 429, description = "MAX_QUEUED_RUNS runs are queued already", body = ApiErrorBody),
    )
)]
pub async fn rerun(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    query: web::Query<RerunQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let failed_only = query.failed_only.unwrap_or(false);
    let max_queued = state.config.max_queued_runs;
    let run = with_db(&state.pool, move |conn| {
        let run = runs::rerun(conn, id, failed_only, max_queued, &caller)?;
        let detail = if failed_only { "failed only" } else { "" };
        identity::audit(
            conn,
            &caller,
            "run.rerun",
            format!("run {id}"),
            format!("as run {} {detail}", run.id).trim_end(),
        )?;
        Ok(run)
    })
    .await?;
    tracing::info!(
        run_id = run.id,
        rerun_of = id,
        failed_only,
        "run queued again"
    );
    wake_for_run(&state.scheduler, &run);
    Ok(created(run))
}

/// Pin a run: retention (`RETENTION_DAYS`) keeps its details.
#[utoipa::path(
    post,
    path = "/api/runs/{id}/pin",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1)),
    responses(
        (status = 200, description = "The run, pinned", body = Run),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
    )
)]
pub async fn pin(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    set_pinned(state, caller, id.into_inner(), true).await
}

/// Unpin a run: retention treats it as any other again.
#[utoipa::path(
    delete,
    path = "/api/runs/{id}/pin",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1)),
    responses(
        (status = 200, description = "The run, not pinned", body = Run),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
    )
)]
pub async fn unpin(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    set_pinned(state, caller, id.into_inner(), false).await
}

async fn set_pinned(
    state: web::Data<AppState>,
    caller: Caller,
    id: i64,
    pinned: bool,
) -> Result<HttpResponse, ApiError> {
    let run = with_db(&state.pool, move |conn| {
        let run = runs::pin(conn, id, pinned)?;
        let action = if pinned { "run.pin" } else { "run.unpin" };
        identity::audit(conn, &caller, action, format!("run {id}"), "")?;
        Ok(run)
    })
    .await?;
    tracing::info!(run_id = id, pinned, "run pin changed");
    Ok(HttpResponse::Ok().json(run))
}

/// The files a run's tests left in `TEST_ARTIFACTS_DIR`, by path.
#[utoipa::path(
    get,
    path = "/api/runs/{id}/artifacts",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1)),
    responses(
        (status = 200, description = "The run's artifacts (empty until it finished)",
            body = Vec<Artifact>, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
    )
)]
pub async fn artifacts(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = CacheKey::of(&req, &());
    conditional_cached(&state, &req, key, move |conn| runs::artifacts(conn, id)).await
}

/// One artifact, as an attachment with the content type of its extension.
/// Never rendered in the service's origin: `nosniff` and a sandboxing
/// Content-Security-Policy keep a hostile HTML or SVG file inert.
#[utoipa::path(
    get,
    path = "/api/runs/{id}/artifacts/{path}",
    tag = "runs",
    params(
        ("id" = i64, Path, description = "Run id", example = 1),
        ("path" = String, Path, description = "The artifact's path, as listed", example = "shots/login.png"),
    ),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream",
            headers(("Content-Disposition" = String), ("X-Content-Type-Options" = String),
                ("Content-Security-Policy" = String))),
        (status = 400, description = "The id is not a number, or the path leaves the artifacts (`..`, absolute)",
            body = ApiErrorBody),
        (status = 404, description = "No such run or artifact", body = ApiErrorBody),
    )
)]
pub async fn artifact(
    state: web::Data<AppState>,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, path) = path.into_inner();
    let (artifact, bytes) =
        with_db(&state.pool, move |conn| runs::artifact(conn, id, &path)).await?;
    let file_name = artifact
        .path
        .rsplit('/')
        .next()
        .unwrap_or(&artifact.path)
        .to_string();
    let response = HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, artifact.content_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
        ))
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .body(bytes);
    Ok(as_attachment(response, file_name))
}
