//! `/api/runs`: create, list, read, cancel and re-run test runs.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;
use shared::validate::{self, Fields, TestPath};
use shared::{
    ApiErrorBody, CaseResult, LogChunk, NewRun, Run, RunListQuery, RunPage, RunStatus,
    DEFAULT_PER_PAGE, MAX_PER_PAGE,
};
use std::time::{Duration, Instant};

use super::etag::{conditional, conditional_cached};
use super::{json_body, path_id, query_pairs, query_param};
use crate::db::models::NewRunRow;
use crate::db::{self, run_blocking};
use crate::error::ApiError;
use crate::state::AppState;

/// Bodies of run requests are small: 1000 paths fit easily.
const MAX_BODY_BYTES: usize = 1024 * 1024;

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
    .service(web::resource("/api/runs/{id}/rerun").route(web::post().to(rerun)));
}

fn created(run: Run) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/runs/{}", run.id)))
        .json(run)
}

/// Parses `{"username", "environment_id", "paths"}`, naming every bad field.
fn parse_new_run(state: &AppState, body: &Value) -> Result<(NewRunRow, Vec<TestPath>), ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    let mut fields = Fields::default();
    let username = match object.get("username") {
        Some(Value::String(raw)) => fields.check("username", validate::username(raw)),
        Some(_) => fields.check("username", Err::<String, _>("must be a string".into())),
        None => fields.check("username", Err::<String, _>("is required".into())),
    };
    let environment_id = match object.get("environment_id") {
        Some(Value::Number(n)) => match n.as_i64() {
            Some(id) => fields.check("environment_id", validate::environment_id(id)),
            None => fields.check(
                "environment_id",
                Err::<i32, _>("must be a whole number".into()),
            ),
        },
        Some(_) => fields.check("environment_id", Err::<i32, _>("must be a number".into())),
        None => fields.check("environment_id", Err::<i32, _>("is required".into())),
    };
    let paths = match object.get("paths") {
        Some(Value::Array(items)) => {
            let strings: Option<Vec<String>> = items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect();
            match strings {
                Some(strings) => fields.check("paths", validate::run_paths(&strings)),
                None => fields.check(
                    "paths",
                    Err::<Vec<_>, _>("must be a list of strings".into()),
                ),
            }
        }
        Some(_) => fields.check(
            "paths",
            Err::<Vec<_>, _>("must be a list of strings".into()),
        ),
        None => fields.check("paths", Err::<Vec<_>, _>("is required".into())),
    };
    if let Some(paths) = &paths {
        if let Err(why) = paths_exist(state, paths) {
            fields.add("paths", why);
        }
    }
    match (username, environment_id, paths) {
        (Some(username), Some(environment_id), Some(paths)) if fields.is_empty() => Ok((
            NewRunRow {
                username,
                environment_id,
                paths: Value::from(paths.iter().map(|p| p.as_arg()).collect::<Vec<_>>()),
                rerun_of: None,
            },
            paths,
        )),
        _ => Err(ApiError::validation(fields.into_inner())),
    }
}

/// Whether every path names a test file or directory of the catalog; the
/// first that does not, and why.
fn paths_exist(state: &AppState, paths: &[TestPath]) -> Result<(), String> {
    paths
        .iter()
        .try_for_each(|path| state.tests_root.entry(path).map(|_| ()))
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
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, MAX_BODY_BYTES).await?;
    // The catalog check reads the disk: off the async threads.
    let checked = state.clone();
    let (new, paths) = web::block(move || parse_new_run(&checked, &body))
        .await
        .map_err(ApiError::internal)??;
    // Asked again under the catalog lock: a file deleted meanwhile is
    // refused here rather than met by the run.
    let rechecked = state.clone();
    let run = run_blocking(&state.pool, move |conn| {
        db::runs::create(conn, new, || {
            paths_exist(&rechecked, &paths).map_err(|why| ApiError::field("paths", why))
        })
    })
    .await?;
    tracing::info!(run_id = run.id, environment_id = run.environment_id, username = %run.username, "run queued");
    state.scheduler.wake();
    Ok(created(run))
}

fn parse_list_query(req: &HttpRequest) -> Result<(RunListQuery, i64, i64), ApiError> {
    let pairs = query_pairs(req)?;
    let status = query_param::<RunStatus>(
        &pairs,
        "status",
        "one of queued, running, success, failed, error, cancelled",
    )?;
    let username = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "username")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let environment_id = query_param::<i32>(&pairs, "environment_id", "a whole number")?;
    let page = query_param::<i64>(&pairs, "page", "a whole number from 1")?.unwrap_or(1);
    let per_page = query_param::<i64>(&pairs, "per_page", "a whole number from 1 to 500")?
        .unwrap_or(DEFAULT_PER_PAGE);
    if !(1..=1_000_000).contains(&page) {
        return Err(ApiError::BadRequest(format!(
            "page must be from 1 to 1000000, not {page}"
        )));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::BadRequest(format!(
            "per_page must be from 1 to {MAX_PER_PAGE}, not {per_page}"
        )));
    }
    let query = RunListQuery {
        status,
        username,
        environment_id,
        page: Some(page),
        per_page: Some(per_page),
    };
    Ok((query, page, per_page))
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
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (query, page, per_page) = parse_list_query(&req)?;
    let page_of_runs = conditional_cached(&state, &req, move |conn| {
        db::runs::list(conn, &query, page, per_page)
    })
    .await?;
    Ok(page_of_runs.respond(|(items, total)| {
        HttpResponse::Ok().json(RunPage {
            items,
            total,
            page,
            per_page,
        })
    }))
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
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path_id(&id, "run id")?;
    let run = conditional_cached(&state, &req, move |conn| db::runs::get(conn, id)).await?;
    Ok(run.respond(|run| HttpResponse::Ok().json(run)))
}

/// A run's log from a byte offset on, at most 1 MiB per answer.
#[utoipa::path(
    get,
    path = "/api/runs/{id}/log",
    tag = "runs",
    params(
        ("id" = i64, Path, description = "Run id", example = 1),
        ("offset" = Option<i64>, Query, minimum = 0,
            description = "Byte offset to read from (0 unless given); then `next_offset`"),
    ),
    responses(
        (status = 200, description = "A slice of the log", body = LogChunk, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id or offset is not valid", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
    )
)]
pub async fn log(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path_id(&id, "run id")?;
    let pairs = query_pairs(&req)?;
    let offset = query_param::<i64>(&pairs, "offset", "a byte offset from 0")?.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::BadRequest(format!(
            "offset must be 0 or more, not {offset}"
        )));
    }
    let chunk = conditional(&state, &req, move |conn| {
        db::logs::read_from(conn, id, offset)
    })
    .await?;
    Ok(chunk.respond(|chunk| HttpResponse::Ok().json(chunk)))
}

/// A run's whole log so far, as text (with pytest's ANSI colours).
#[utoipa::path(
    get,
    path = "/api/runs/{id}/log.txt",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1)),
    responses(
        (status = 200, description = "The log", body = String, content_type = "text/plain",
            headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
    )
)]
pub async fn log_text(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path_id(&id, "run id")?;
    let text = conditional(&state, &req, move |conn| db::logs::read_all(conn, id)).await?;
    Ok(text.respond(|text| {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(text)
    }))
}

/// A run's test cases, from pytest's JUnit report.
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
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path_id(&id, "run id")?;
    let cases = conditional_cached(&state, &req, move |conn| db::runs::cases(conn, id)).await?;
    Ok(cases.respond(|cases| HttpResponse::Ok().json(cases)))
}

/// A finished run's JUnit XML report, as pytest wrote it: for CI systems
/// that show test results.
#[utoipa::path(
    get,
    path = "/api/runs/{id}/junit.xml",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id", example = 1)),
    responses(
        (status = 200, description = "The report", body = String, content_type = "application/xml",
            headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such run, or it has no report (not finished, or pytest wrote none)",
            body = ApiErrorBody),
    )
)]
pub async fn junit_xml(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path_id(&id, "run id")?;
    let xml = conditional(&state, &req, move |conn| db::reports::junit_xml(conn, id)).await?;
    Ok(xml.respond(|xml| {
        HttpResponse::Ok()
            .content_type("application/xml; charset=utf-8")
            .body(xml)
    }))
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
        (status = 404, description = "No such run", body = ApiErrorBody),
        (status = 409, description = "The run is already finished", body = ApiErrorBody),
    )
)]
pub async fn cancel(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path_id(&id, "run id")?;
    let outcome = run_blocking(&state.pool, move |conn| db::runs::cancel(conn, id)).await?;
    if let db::runs::CancelOutcome::Requested = outcome {
        tracing::info!(run_id = id, "cancel requested");
        state.scheduler.cancel_local(id);
        // Answer once the process tree is gone, if that is quick; the run's
        // holder may be another instance, which sees the flag within 0.5 s.
        let patience = state.config.kill_grace * 3 + Duration::from_secs(5);
        let deadline = Instant::now() + patience;
        loop {
            let run = run_blocking(&state.pool, move |conn| db::runs::get(conn, id)).await?;
            if run.status.is_finished() || Instant::now() >= deadline {
                return Ok(HttpResponse::Ok().json(run));
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tracing::info!(run_id = id, "queued run cancelled");
    state.scheduler.wake();
    let run = run_blocking(&state.pool, move |conn| db::runs::get(conn, id)).await?;
    Ok(HttpResponse::Ok().json(run))
}

/// Queue a run again: same user, environment and paths, or only its failed
/// and errored tests.
#[utoipa::path(
    post,
    path = "/api/runs/{id}/rerun",
    tag = "runs",
    params(
        ("id" = i64, Path, description = "Run id", example = 1),
        ("failed_only" = Option<bool>, Query, description = "Only the failed and errored tests of the run"),
    ),
    responses(
        (status = 201, description = "The new run, queued", body = Run,
            headers(("Location" = String, description = "`/api/runs/{id}`"))),
        (status = 400, description = "The id or failed_only is not valid", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
        (status = 422, description = "failed_only, and the run has no failed tests", body = ApiErrorBody),
    )
)]
pub async fn rerun(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path_id(&id, "run id")?;
    let pairs = query_pairs(&req)?;
    let failed_only = match pairs.iter().rev().find(|(k, _)| k == "failed_only") {
        None => false,
        Some((_, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "" => true,
            "false" | "0" | "no" => false,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "failed_only must be true or false, not {other:?}"
                )))
            }
        },
    };
    let run = run_blocking(&state.pool, move |conn| {
        let original = db::runs::find(conn, id)?;
        let paths = if failed_only {
            let failed = db::runs::failed_nodeids(conn, id)?;
            if failed.is_empty() {
                return Err(ApiError::field(
                    "failed_only",
                    format!("run {id} has no failed or errored tests to re-run"),
                ));
            }
            failed
        } else {
            original.paths()
        };
        db::runs::create(
            conn,
            NewRunRow {
                username: original.username,
                environment_id: original.environment_id,
                paths: Value::from(paths),
                rerun_of: Some(id),
            },
            // Paths of a run that ran: one whose file is gone since ends
            // as an error naming it.
            || Ok(()),
        )
    })
    .await?;
    tracing::info!(
        run_id = run.id,
        rerun_of = id,
        failed_only,
        "run queued again"
    );
    state.scheduler.wake();
    Ok(created(run))
}
