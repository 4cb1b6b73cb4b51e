//! `/api/schedules`: runs queued by a cron expression in a time zone.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use shared::{ApiErrorBody, NewSchedule, Schedule};

use crate::http::blocking::with_db;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::state::AppState;
use crate::service::identity::{self, Caller};
use crate::service::schedules;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/schedules")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(
        web::resource("/api/schedules/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::delete().to(delete)),
    );
}

/// Add a schedule.
#[utoipa::path(
    post,
    path = "/api/schedules",
    tag = "schedules",
    request_body(content = NewSchedule, content_type = "application/json"),
    responses(
        (status = 201, description = "The schedule, with its next fire (`next_run_at`)", body = Schedule,
            headers(("Location" = String, description = "`/api/schedules/{id}`"))),
        (status = 400, description = "Malformed JSON, not JSON, not an object", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 422, description = "Invalid values (a bad cron expression or time zone, \
            an unknown environment or path); `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    new: JsonBody<NewSchedule>,
) -> Result<HttpResponse, ApiError> {
    let mut new = new.into_inner();
    identity::claim_schedule_username(&caller, state.config.auth.enabled, &mut new.username)?;
    let root = state.tests_root.clone();
    let schedule = with_db(&state.pool, move |conn| {
        let schedule = schedules::create(conn, &root, &new)?;
        let target = format!("schedule {}", schedule.id);
        identity::audit(conn, &caller, "schedule.create", target, &schedule.cron)?;
        Ok(schedule)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/schedules/{}", schedule.id)))
        .json(schedule))
}

/// Every schedule, by id.
#[utoipa::path(
    get,
    path = "/api/schedules",
    tag = "schedules",
    responses((status = 200, description = "The schedules", body = Vec<Schedule>))
)]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = with_db(&state.pool, |conn| schedules::list(conn)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One schedule.
#[utoipa::path(
    get,
    path = "/api/schedules/{id}",
    tag = "schedules",
    params(("id" = i64, Path, description = "Schedule id", example = 1)),
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such schedule", body = ApiErrorBody),
    )
)]
pub async fn get(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let schedule = with_db(&state.pool, move |conn| schedules::get(conn, id)).await?;
    Ok(HttpResponse::Ok().json(schedule))
}

/// Change a schedule: the fields given (those of a create) replace the
/// current ones, the others stay; its next fire is counted from now.
#[utoipa::path(
    put,
    path = "/api/schedules/{id}",
    tag = "schedules",
    params(("id" = i64, Path, description = "Schedule id", example = 1)),
    request_body(content = NewSchedule, content_type = "application/json"),
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 400, description = "The id is not a number, or the body is not a JSON object", body = ApiErrorBody),
        (status = 404, description = "No such schedule", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    new: JsonBody<NewSchedule>,
) -> Result<HttpResponse, ApiError> {
    let (id, mut new) = (id.into_inner(), new.into_inner());
    if !new.username.is_missing() {
        identity::claim_schedule_username(&caller, state.config.auth.enabled, &mut new.username)?;
    }
    let root = state.tests_root.clone();
    let schedule = with_db(&state.pool, move |conn| {
        let schedule = schedules::update(conn, &root, id, &new)?;
        identity::audit(
            conn,
            &caller,
            "schedule.update",
            format!("schedule {id}"),
            "",
        )?;
        Ok(schedule)
    })
    .await?;
    Ok(HttpResponse::Ok().json(schedule))
}

/// Delete a schedule; the runs it queued stay.
#[utoipa::path(
    delete,
    path = "/api/schedules/{id}",
    tag = "schedules",
    params(("id" = i64, Path, description = "Schedule id", example = 1)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such schedule", body = ApiErrorBody),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    with_db(&state.pool, move |conn| {
        schedules::delete(conn, id)?;
        identity::audit(
            conn,
            &caller,
            "schedule.delete",
            format!("schedule {id}"),
            "",
        )
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
