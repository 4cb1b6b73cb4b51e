//! Schedules: runs queued by cron expressions.

use gloo_net::http::Request;
use shared::{NewSchedule, Schedule};

use super::{get, request, request_empty, with_json, ApiError};

pub async fn list() -> Result<Vec<Schedule>, ApiError> {
    request(get("/api/schedules")).await
}

pub async fn get_schedule(id: i64) -> Result<Schedule, ApiError> {
    request(get(&format!("/api/schedules/{id}"))).await
}

pub async fn create(new: &NewSchedule) -> Result<Schedule, ApiError> {
    request(with_json(Request::post("/api/schedules"), new)).await
}

pub async fn update(id: i64, new: &NewSchedule) -> Result<Schedule, ApiError> {
    request(with_json(
        Request::put(&format!("/api/schedules/{id}")),
        new,
    ))
    .await
}

pub async fn delete(id: i64) -> Result<(), ApiError> {
    request_empty(Request::delete(&format!("/api/schedules/{id}")).build()).await
}
