//! `/api/environments/{id}/reservations`, `/api/reservations/{id}` and
//! `/api/environments/{id}/maintenance`: sharing environments.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use shared::{
    ApiErrorBody, Environment, ExtendReservation, NewMaintenance, NewReservation, Reservation,
};

use crate::http::blocking::with_db;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::state::AppState;
use crate::service::environments::id_from_path;
use crate::service::identity;
use crate::service::reservations::{self, Caller};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/environments/{id}/reservations")
            .route(web::get().to(list))
            .route(web::post().to(reserve)),
    )
    .service(
        web::resource("/api/environments/{id}/maintenance")
            .route(web::post().to(start_maintenance))
            .route(web::delete().to(end_maintenance)),
    )
    .service(
        web::resource("/api/reservations/{id}")
            .route(web::get().to(get))
            .route(web::delete().to(release)),
    )
    .service(web::resource("/api/reservations/{id}/extend").route(web::post().to(extend)));
}

/// A reservation is the caller's own: an `owner` in the body may only
/// repeat the caller's name (with accounts off, it names the owner).
fn owner_of(state: &AppState, caller: Caller, given: Option<String>) -> Result<Caller, ApiError> {
    match given.map(|name| name.trim().to_string()) {
        Some(name) if !state.config.auth.enabled && !name.is_empty() => Ok(Caller {
            username: name,
            ..caller
        }),
        Some(name) if state.config.auth.enabled && name != caller.username => Err(ApiError::field(
            "owner",
            format!(
                "must be your own user name ({}), or be left out",
                caller.username
            ),
        )),
        _ => Ok(caller),
    }
}

/// Reserve an environment, now or as the next in its queue.
#[utoipa::path(
    post,
    path = "/api/environments/{id}/reservations",
    tag = "environments",
    params(("id" = i32, Path, description = "Environment id (1 to 100)", example = 7)),
    request_body(content = NewReservation, content_type = "application/json"),
    responses(
        (status = 201, description = "The reservation: active (now) or waiting (next)", body = Reservation,
            headers(("Location" = String, description = "`/api/reservations/{id}`"))),
        (status = 400, description = "The id is not a number, or the body is not a JSON object", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 404, description = "No such environment", body = ApiErrorBody),
        (status = 409, description = "now, and the environment is busy, held, in maintenance or has a queue",
            body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn reserve(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    new: JsonBody<NewReservation>,
) -> Result<HttpResponse, ApiError> {
    let environment_id = id_from_path(id.into_inner())?;
    let new = new.into_inner();
    let owner = new.owner.given().cloned().flatten();
    let caller = owner_of(&state, caller, owner)?;
    let reservation = with_db(&state.pool, move |conn| {
        let reservation = reservations::reserve(conn, environment_id, &caller, &new)?;
        identity::audit(
            conn,
            &caller,
            "reservation.create",
            format!("environment {environment_id}"),
            format!("reservation {}", reservation.id),
        )?;
        Ok(reservation)
    })
    .await?;
    state.scheduler.wake();
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/reservations/{}", reservation.id),
        ))
        .json(reservation))
}

/// An environment's reservations: the one holding it, those waiting in
/// its queue, and the last ten that ended.
#[utoipa::path(
    get,
    path = "/api/environments/{id}/reservations",
    tag = "environments",
    params(("id" = i32, Path, description = "Environment id (1 to 100)", example = 7)),
    responses(
        (status = 200, description = "The reservations", body = Vec<Reservation>),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such environment", body = ApiErrorBody),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let environment_id = id_from_path(id.into_inner())?;
    let list = with_db(&state.pool, move |conn| {
        reservations::of_environment(conn, environment_id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One reservation.
#[utoipa::path(
    get,
    path = "/api/reservations/{id}",
    tag = "environments",
    params(("id" = i64, Path, description = "Reservation id", example = 1)),
    responses(
        (status = 200, description = "The reservation", body = Reservation),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such reservation", body = ApiErrorBody),
    )
)]
pub async fn get(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let reservation = with_db(&state.pool, move |conn| reservations::get(conn, id)).await?;
    Ok(HttpResponse::Ok().json(reservation))
}

/// Add minutes to a reservation or hold that has not ended.
#[utoipa::path(
    post,
    path = "/api/reservations/{id}/extend",
    tag = "environments",
    params(("id" = i64, Path, description = "Reservation id", example = 1)),
    request_body(content = ExtendReservation, content_type = "application/json"),
    responses(
        (status = 200, description = "The reservation", body = Reservation),
        (status = 400, description = "The id is not a number, or the body is not a JSON object", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 403, description = "Not the caller's to change", body = ApiErrorBody),
        (status = 404, description = "No such reservation", body = ApiErrorBody),
        (status = 409, description = "It has ended", body = ApiErrorBody),
        (status = 422, description = "Invalid minutes", body = ApiErrorBody),
    )
)]
pub async fn extend(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: JsonBody<ExtendReservation>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let minutes = body
        .check()
        .map_err(|why| ApiError::field("minutes", why))?;
    let reservation = with_db(&state.pool, move |conn| {
        let reservation = reservations::extend(conn, id, minutes, &caller)?;
        identity::audit(
            conn,
            &caller,
            "reservation.extend",
            format!("reservation {id}"),
            format!("{minutes} minutes"),
        )?;
        Ok(reservation)
    })
    .await?;
    Ok(HttpResponse::Ok().json(reservation))
}

/// End a reservation or hold before its time.
#[utoipa::path(
    delete,
    path = "/api/reservations/{id}",
    tag = "environments",
    params(("id" = i64, Path, description = "Reservation id", example = 1)),
    responses(
        (status = 204, description = "Ended"),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 403, description = "Not the caller's to end", body = ApiErrorBody),
        (status = 404, description = "No such reservation", body = ApiErrorBody),
        (status = 409, description = "It has ended already", body = ApiErrorBody),
    )
)]
pub async fn release(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    with_db(&state.pool, move |conn| {
        reservations::release(conn, id, &caller)?;
        identity::audit(
            conn,
            &caller,
            "reservation.delete",
            format!("reservation {id}"),
            "",
        )
    })
    .await?;
    state.scheduler.wake();
    Ok(HttpResponse::NoContent().finish())
}

/// Take an environment out of rotation: `draining` while its run goes,
/// then `offline`; queued runs wait, and say why.
#[utoipa::path(
    post,
    path = "/api/environments/{id}/maintenance",
    tag = "environments",
    params(("id" = i32, Path, description = "Environment id (1 to 100)", example = 7)),
    request_body(content = NewMaintenance, content_type = "application/json"),
    responses(
        (status = 200, description = "The environment", body = Environment),
        (status = 400, description = "The id is not a number, or the body is not a JSON object", body = ApiErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ApiErrorBody),
        (status = 404, description = "No such environment", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn start_maintenance(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: JsonBody<NewMaintenance>,
) -> Result<HttpResponse, ApiError> {
    let environment_id = id_from_path(id.into_inner())?;
    let body = body.into_inner();
    let environment = with_db(&state.pool, move |conn| {
        let environment = reservations::start_maintenance(conn, environment_id, &body)?;
        identity::audit(
            conn,
            &caller,
            "environment.maintenance",
            format!("environment {environment_id}"),
            "started",
        )?;
        Ok(environment)
    })
    .await?;
    Ok(HttpResponse::Ok().json(environment))
}

/// Put an environment back in rotation.
#[utoipa::path(
    delete,
    path = "/api/environments/{id}/maintenance",
    tag = "environments",
    params(("id" = i32, Path, description = "Environment id (1 to 100)", example = 7)),
    responses(
        (status = 200, description = "The environment", body = Environment),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 404, description = "No such environment", body = ApiErrorBody),
    )
)]
pub async fn end_maintenance(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let environment_id = id_from_path(id.into_inner())?;
    let environment = with_db(&state.pool, move |conn| {
        let environment = reservations::end_maintenance(conn, environment_id)?;
        identity::audit(
            conn,
            &caller,
            "environment.maintenance",
            format!("environment {environment_id}"),
            "ended",
        )?;
        Ok(environment)
    })
    .await?;
    state.scheduler.wake();
    Ok(HttpResponse::Ok().json(environment))
}
