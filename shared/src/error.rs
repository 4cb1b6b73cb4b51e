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
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    Validation,
    TooMany,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::Validation => 422,
            ErrorCode::TooMany => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The code of an error answer that came without the JSON body (from
    /// a proxy, or from the framework itself): the inverse of
    /// [`ErrorCode::http_status`]. The 502 and 504 of a proxy whose
    /// upstream is down mean the same to a client as our own 503.
    pub fn from_status(status: u16) -> ErrorCode {
        match status {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::TooLarge,
            422 => ErrorCode::Validation,
            429 => ErrorCode::TooMany,
            502..=504 => ErrorCode::Unavailable,
            // 400 itself, 405, 415 and the like: the request was refused.
            400..=499 => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
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

    const ALL: [ErrorCode; 10] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::Validation,
        ErrorCode::TooMany,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    #[test]
    fn every_code_comes_back_from_its_own_status() {
        for code in ALL {
            assert_eq!(ErrorCode::from_status(code.http_status()), code, "{code:?}");
        }
    }

    #[test]
    fn other_statuses_fall_into_the_nearest_code() {
        assert_eq!(ErrorCode::from_status(405), ErrorCode::BadRequest);
        assert_eq!(ErrorCode::from_status(418), ErrorCode::BadRequest);
        assert_eq!(ErrorCode::from_status(502), ErrorCode::Unavailable);
        assert_eq!(ErrorCode::from_status(504), ErrorCode::Unavailable);
        assert_eq!(ErrorCode::from_status(501), ErrorCode::Internal);
        assert_eq!(ErrorCode::from_status(0), ErrorCode::Internal);
        assert_eq!(ErrorCode::from_status(200), ErrorCode::Internal);
    }

    #[test]
    fn new_codes_are_snake_case_on_the_wire() {
        let names: Vec<String> = [
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::TooMany,
        ]
        .iter()
        .map(|code| serde_json::to_string(code).unwrap_or_default())
        .collect();
        assert_eq!(
            names,
            [r#""unauthorized""#, r#""forbidden""#, r#""too_many""#]
        );
    }

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
