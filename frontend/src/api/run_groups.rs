//! Run groups: one suite split over a pool, followed as one.

use gloo_net::http::Request;
use shared::{NewRunGroup, RunGroup};

use super::{get, request, with_json, ApiError};

pub async fn create(new_group: &NewRunGroup) -> Result<RunGroup, ApiError> {
    request(with_json(Request::post("/api/run-groups"), new_group)).await
}

pub async fn get_group(id: i64) -> Result<RunGroup, ApiError> {
    request(get(&format!("/api/run-groups/{id}"))).await
}

pub async fn cancel(id: i64) -> Result<RunGroup, ApiError> {
    request(Request::post(&format!("/api/run-groups/{id}/cancel")).build()).await
}
