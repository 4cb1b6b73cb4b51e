//! Environments: the 100 shared resources runs are queued for.

use gloo_net::http::Request;
use shared::{Environment, NewEnvironment, UpdateEnvironment};

use super::{get, request, request_empty, with_json, ApiError};

pub async fn list() -> Result<Vec<Environment>, ApiError> {
    request(get("/api/environments")).await
}

pub async fn get_environment(id: i32) -> Result<Environment, ApiError> {
    request(get(&format!("/api/environments/{id}"))).await
}

pub async fn create(environment: &NewEnvironment) -> Result<Environment, ApiError> {
    request(with_json(Request::post("/api/environments"), environment)).await
}

pub async fn update(id: i32, changes: &UpdateEnvironment) -> Result<Environment, ApiError> {
    request(with_json(
        Request::put(&format!("/api/environments/{id}")),
        changes,
    ))
    .await
}

pub async fn delete(id: i32) -> Result<(), ApiError> {
    request_empty(Request::delete(&format!("/api/environments/{id}")).build()).await
}
