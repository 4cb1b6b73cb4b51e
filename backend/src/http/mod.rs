//! The HTTP layer: routes (one module per area, each exposing `config`),
//! the extractors' error bodies, conditional GETs, the request log and the
//! OpenAPI document. Handlers parse input into shared types, call one use
//! case of [`crate::service`], and map its answer.

pub mod auth;
pub mod blocking;
pub mod browser_safety;
pub mod conditional;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod request_log;
pub mod routes;
pub mod state;
pub mod versions;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpRequest, HttpResponse};
use shared::ErrorCode;

use error::ApiError;

/// The largest JSON body any endpoint takes.
pub const MAX_JSON_BYTES: usize = 1024 * 1024;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(path_config())
        .app_data(query_config())
        .configure(routes::config)
        .configure(openapi::config);
}

/// JSON bodies: at most [`MAX_JSON_BYTES`], `application/json` (or a
/// `+json` type), refused with the JSON error body.
fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_JSON_BYTES)
        .error_handler(|error, req| json_error(error, req).into())
}

fn json_error(error: JsonPayloadError, req: &HttpRequest) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => {
            ApiError::TooLarge(format!("the body is over {limit} bytes"))
        }
        JsonPayloadError::ContentType => {
            let given = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .unwrap_or("nothing");
            ApiError::BadRequest(format!(
                "expected a JSON body (Content-Type: application/json), got {given:?}"
            ))
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::BadRequest(format!(
            "the body must be a JSON object of the documented fields: {e}"
        )),
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("malformed JSON: {e}")),
        other => ApiError::BadRequest(format!("cannot read the body: {other}")),
    }
}

/// Path parameters that do not parse (`/api/runs/abc`) are a 400.
fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error: PathError, req| {
        ApiError::BadRequest(format!("{} is not a valid path here: {error}", req.path())).into()
    })
}

/// Query strings that do not parse, or whose values do not, are a 400.
fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _| {
        ApiError::BadRequest(format!("bad query string: {error}")).into()
    })
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
    // A body of the wrong type is a bad request (docs/API.md), whichever
    // extractor refused it.
    let status = match res.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::BAD_REQUEST,
        other => other,
    };
    let code = ErrorCode::from_status(status.as_u16());
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
