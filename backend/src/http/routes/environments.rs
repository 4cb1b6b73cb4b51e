//! `/api/environments`: the environments runs queue for.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use shared::{ApiErrorBody, Environment, NewEnvironment, UpdateEnvironment};

use crate::http::blocking::with_db;
use crate::http::conditional::{conditional_cached, CacheKey};
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::state::AppState;
use crate::service::environments::{self, id_from_path};
use crate::service::identity::{self, Caller};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/environments")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/api/environments/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::delete().to(delete)),
    );
}

/// Every environment, by id, with whether it is busy and its queue.
#[utoipa::path(
    get,
    path = "/api/environments",
    tag = "environments",
    responses(
        (status = 200, description = "The environments", body = Vec<Environment>,
            headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
    )
)]
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let key = CacheKey::of(&req, &());
    conditional_cached(&state, &req, key, |conn| environments::list(conn)).await
}

/// One environment.
#[utoipa::path(
    get,
    path = "/api/environments/{id}",
    tag = "environments",
    params(("id" = i32, Path, description = "Environment id (1 to 100)", example = 7)),
    responses(
        (status = 200, description = "The environment", body = Environment, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag in `If-None-Match`"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such environment", body = ApiErrorBody),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id_from_path(id.into_inner())?;
    let key = CacheKey::of(&req, &());
    conditional_cached(&state, &req, key, move |conn| environments::get(conn, id)).await
}

/// Create an environment (ids 1 to 100; all exist after installation).
#[utoipa::path(
    post,
    path = "/api/environments",
    tag = "environments",
    request_body(content = NewEnvironment, content_type = "application/json"),
    responses(
        (status = 201, description = "The environment", body = Environment,
            headers(("Location" = String, description = "`/api/environments/{id}`"))),
        (status = 400, description = "Malformed JSON, not JSON, not an object", body = ApiErrorBody),
        (status = 409, description = "The id exists", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    new: JsonBody<NewEnvironment>,
) -> Result<HttpResponse, ApiError> {
    let (id, settings) = environments::check_new(&new)?;
    let environment = with_db(&state.pool, move |conn| {
        let environment = environments::create(conn, id, settings)?;
        identity::audit(
            conn,
            &caller,
            "environment.create",
            format!("environment {id}"),
            &environment.name,
        )?;
        Ok(environment)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/environments/{id}")))
        .json(environment))
}

/// Change an environment's settings; a field left out keeps its value.
#[utoipa::path(
    put,
    path = "/api/environments/{id}",
    tag = "environments",
    params(("id" = i32, Path, description = "Environment id (1 to 100)", example = 7)),
    request_body(content = UpdateEnvironment, content_type = "application/json"),
    responses(
        (status = 200, description = "The environment", body = Environment),
        (status = 400, description = "The id is not a number; malformed JSON, not JSON, not an object", body = ApiErrorBody),
        (status = 404, description = "No such environment", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    update: JsonBody<UpdateEnvironment>,
) -> Result<HttpResponse, ApiError> {
    let id = id_from_path(id.into_inner())?;
    let changes = environments::check_update(id, &update)?;
    let detail = changes.describe();
    let environment = with_db(&state.pool, move |conn| {
        let environment = environments::update(conn, id, changes)?;
        identity::audit(
            conn,
            &caller,
            "environment.update",
            format!("environment {id}"),
            detail,
        )?;
        Ok(environment)
    })
    .await?;
    Ok(HttpResponse::Ok().json(environment))
}

/// Delete an idle environment without queued runs.
#[utoipa::path(
    delete,
    path = "/api/environments/{id}",
    tag = "environments",
    params(("id" = i32, Path, description = "Environment id (1 to 100)", example = 7)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such environment", body = ApiErrorBody),
        (status = 409, description = "It is busy or has queued runs", body = ApiErrorBody),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id_from_path(id.into_inner())?;
    with_db(&state.pool, move |conn| {
        environments::delete(conn, id)?;
        identity::audit(
            conn,
            &caller,
            "environment.delete",
            format!("environment {id}"),
            "",
        )
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
