//! The error body every 4xx/5xx answer carries.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Field name to a message about what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    NotFound,
    Conflict,
    TooLarge,
    Validation,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::Validation => 422,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// Only for validation errors: each bad field and what is wrong with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<std::collections::BTreeMap<String, String>>, nullable = false))]
    pub fields: Option<FieldErrors>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorBody {
    pub error: ErrorDetail,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ApiErrorBody {
            error: ErrorDetail {
                code: ErrorCode::Validation,
                message: "invalid run".into(),
                fields: Some(FieldErrors::from([(
                    "username".to_string(),
                    "must not be empty".to_string(),
                )])),
            },
        };
        let json = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "validation", "message": "invalid run",
                "fields": {"username": "must not be empty"}}})
        );
    }

    #[test]
    fn fields_are_left_out_when_absent() {
        let body = ApiErrorBody {
            error: ErrorDetail {
                code: ErrorCode::NotFound,
                message: "no run 3".into(),
                fields: None,
            },
        };
        let json = serde_json::to_string(&body).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"error":{"code":"not_found","message":"no run 3"}}"#
        );
    }
}
