//! Runs: list, create, follow, cancel and repeat them.

use gloo_net::http::Request;
use shared::{Artifact, CaseResult, LogChunk, NewRun, Run, RunListQuery, RunPage};

use super::{encode, get, request, with_json, ApiError};

/// The query string of `GET /api/runs`, without the `?`.
pub fn list_query_string(query: &RunListQuery) -> String {
    let mut pairs = Vec::new();
    if let Some(status) = query.status {
        pairs.push(format!("status={}", status.as_str()));
    }
    if let Some(username) = &query.username {
        pairs.push(format!("username={}", encode(username)));
    }
    if let Some(id) = query.environment_id {
        pairs.push(format!("environment_id={id}"));
    }
    if let Some(page) = query.page {
        pairs.push(format!("page={page}"));
    }
    if let Some(per_page) = query.per_page {
        pairs.push(format!("per_page={per_page}"));
    }
    pairs.join("&")
}

pub async fn list(query: RunListQuery) -> Result<RunPage, ApiError> {
    request(get(&format!("/api/runs?{}", list_query_string(&query)))).await
}

pub async fn get_run(id: i64) -> Result<Run, ApiError> {
    request(get(&format!("/api/runs/{id}"))).await
}

pub async fn create(new_run: &NewRun) -> Result<Run, ApiError> {
    request(with_json(Request::post("/api/runs"), new_run)).await
}

pub async fn log(id: i64, offset: i64) -> Result<LogChunk, ApiError> {
    request(get(&format!("/api/runs/{id}/log?offset={offset}"))).await
}

pub fn raw_log_url(id: i64) -> String {
    format!("/api/runs/{id}/log.txt")
}

pub async fn cases(id: i64) -> Result<Vec<CaseResult>, ApiError> {
    request(get(&format!("/api/runs/{id}/cases"))).await
}

pub async fn cancel(id: i64) -> Result<Run, ApiError> {
    request(Request::post(&format!("/api/runs/{id}/cancel")).build()).await
}

pub async fn rerun(id: i64, failed_only: bool) -> Result<Run, ApiError> {
    let url = if failed_only {
        format!("/api/runs/{id}/rerun?failed_only=true")
    } else {
        format!("/api/runs/{id}/rerun")
    };
    request(Request::post(&url).build()).await
}

/// Pins (`true`) or unpins a run against retention.
pub async fn set_pinned(id: i64, pinned: bool) -> Result<Run, ApiError> {
    let url = format!("/api/runs/{id}/pin");
    let builder = if pinned {
        Request::post(&url)
    } else {
        Request::delete(&url)
    };
    request(builder.build()).await
}

pub async fn artifacts(id: i64) -> Result<Vec<Artifact>, ApiError> {
    request(get(&format!("/api/runs/{id}/artifacts"))).await
}

/// Where an artifact downloads from; each path segment encoded.
pub fn artifact_url(id: i64, path: &str) -> String {
    let encoded: Vec<String> = path.split('/').map(encode).collect();
    format!("/api/runs/{id}/artifacts/{}", encoded.join("/"))
}
