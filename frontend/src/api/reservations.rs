//! Sharing environments: reservations, holds and maintenance.

use gloo_net::http::Request;
use shared::{Environment, ExtendReservation, NewMaintenance, NewReservation, Reservation};

use super::{get, request, request_empty, with_json, ApiError};

/// The environment's reservations: the one holding it, those waiting, and
/// the last that ended.
pub async fn of_environment(environment_id: i32) -> Result<Vec<Reservation>, ApiError> {
    request(get(&format!(
        "/api/environments/{environment_id}/reservations"
    )))
    .await
}

pub async fn reserve(
    environment_id: i32,
    reservation: &NewReservation,
) -> Result<Reservation, ApiError> {
    request(with_json(
        Request::post(&format!("/api/environments/{environment_id}/reservations")),
        reservation,
    ))
    .await
}

pub async fn extend(id: i64, minutes: i32) -> Result<Reservation, ApiError> {
    let body = ExtendReservation {
        minutes: minutes.into(),
    };
    request(with_json(
        Request::post(&format!("/api/reservations/{id}/extend")),
        &body,
    ))
    .await
}

/// Ends a reservation or a hold (or takes a waiting one out of the queue).
pub async fn release(id: i64) -> Result<(), ApiError> {
    request_empty(Request::delete(&format!("/api/reservations/{id}")).build()).await
}

pub async fn start_maintenance(
    environment_id: i32,
    maintenance: &NewMaintenance,
) -> Result<Environment, ApiError> {
    request(with_json(
        Request::post(&format!("/api/environments/{environment_id}/maintenance")),
        maintenance,
    ))
    .await
}

pub async fn end_maintenance(environment_id: i32) -> Result<Environment, ApiError> {
    request(Request::delete(&format!("/api/environments/{environment_id}/maintenance")).build())
        .await
}
