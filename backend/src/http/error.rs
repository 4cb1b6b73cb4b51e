//! The one error type of the API: each variant maps to a status and the
//! JSON error body every 4xx/5xx answer carries (see docs/API.md).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use shared::{ApiErrorBody, ErrorCode, ErrorDetail, FieldErrors};

use crate::service::ServiceError;

/// What a 429 suggests: the caps it reflects free up within seconds.
const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// No credentials, or wrong ones.
    #[error("{0}")]
    Unauthorized(String),
    /// Refused whoever asks: e.g. a browser request from another site.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    /// A cap on work at once; answered with `Retry-After`.
    #[error("{0}")]
    TooMany(String),
    #[error("the database cannot be reached")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(fields: FieldErrors) -> ApiError {
        let message = fields
            .iter()
            .map(|(field, why)| format!("{field} {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::Validation { message, fields }
    }

    pub fn field(field: &str, why: impl Into<String>) -> ApiError {
        ApiError::validation(FieldErrors::from([(field.to_string(), why.into())]))
    }

    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(cause.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::TooLarge(_) => ErrorCode::TooLarge,
            ApiError::Validation { .. } => ErrorCode::Validation,
            ApiError::TooMany(_) => ErrorCode::TooMany,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn body(&self) -> ApiErrorBody {
        let message = match self {
            // The cause of a 500 is logged, not shown.
            ApiError::Internal(_) => "internal error; see the service log".to_string(),
            other => other.to_string(),
        };
        let fields = match self {
            ApiError::Validation { fields, .. } => Some(fields.clone()),
            _ => None,
        };
        ApiErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                fields,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => tracing::error!(%cause, "request failed"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::TooMany(_) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
            }
            ApiError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        response.json(self.body())
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::BadRequest(why) => ApiError::BadRequest(why),
            ServiceError::NotFound(why) => ApiError::NotFound(why),
            ServiceError::Unauthorized(why) => ApiError::Unauthorized(why),
            ServiceError::Forbidden(why) => ApiError::Forbidden(why),
            ServiceError::Conflict(why) => ApiError::Conflict(why),
            ServiceError::Invalid { message, fields } => ApiError::Validation { message, fields },
            ServiceError::TooMany(why) => ApiError::TooMany(why),
            ServiceError::Unavailable(why) => ApiError::Unavailable(why),
            ServiceError::Internal(why) => ApiError::Internal(why),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        ServiceError::from(error).into()
    }
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        ApiError::Unavailable(error.to_string())
    }
}
