//! The REST API: one module per area, each exposing `config`.

pub mod environments;
pub mod etag;
pub mod health;
pub mod insights;
pub mod metrics;
pub mod openapi;
pub mod runs;
pub mod tests;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use shared::ErrorCode;
use std::str::FromStr;

use crate::error::ApiError;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.configure(insights::config)
        .configure(runs::config)
        .configure(environments::config)
        .configure(tests::config)
        .configure(health::config)
        .configure(openapi::config)
        .configure(metrics::config);
}

/// Any answer for an unknown path.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no such endpoint: {} {}",
        req.method(),
        req.path()
    )))
}

/// Gives every error answer that is not ours yet (actix's own 404, 405,
/// payload errors, …) the JSON error body.
pub fn json_error_body<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let code = match status.as_u16() {
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::TooLarge,
        422 => ErrorCode::Validation,
        503 => ErrorCode::Unavailable,
        400..=499 => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    };
    let message = status.canonical_reason().unwrap_or("error").to_string();
    let body = shared::ApiErrorBody {
        error: shared::ErrorDetail {
            code,
            message,
            fields: None,
        },
    };
    let (req, old) = res.into_parts();
    let mut response = HttpResponse::build(status).json(body);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}

/// The JSON body of a request, read up to `limit` bytes. Checked here
/// rather than by actix's extractor so that every refusal has our body.
pub async fn json_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<serde_json::Value, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !(mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")) {
        return Err(ApiError::BadRequest(format!(
            "expected a JSON body (Content-Type: application/json), got {:?}",
            if content_type.is_empty() {
                "nothing"
            } else {
                content_type
            }
        )));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "the body is over {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
}

/// Query parameters as text, refusing a query string that does not parse
/// or that holds a NUL byte (`%00`), which PostgreSQL refuses in text: it
/// would otherwise turn a bad filter into a 500.
pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))?;
    if let Some((name, _)) = pairs
        .iter()
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        return Err(ApiError::BadRequest(format!(
            "query parameter {name:?} must not contain a NUL byte"
        )));
    }
    Ok(pairs)
}

/// One query parameter parsed as `T`; absent or empty (`?status=`, as
/// forms send it) gives `None`. The OpenAPI document says so too.
pub fn query_param<T: FromStr>(
    pairs: &[(String, String)],
    name: &str,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    match pairs.iter().rev().find(|(key, _)| key == name) {
        None => Ok(None),
        Some((_, value)) if value.is_empty() => Ok(None),
        Some((_, value)) => value.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!(
                "query parameter {name} must be {expected}, not {value:?}"
            ))
        }),
    }
}

/// A numeric id from the path.
pub fn path_id<T: FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} must be a whole number, not {raw:?}")))
}
