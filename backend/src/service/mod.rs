//! The use cases behind the API: what creating, cancelling or re-running a
//! run means, managing environments and test files, reading insights. Each
//! function is synchronous, takes a database connection, and answers a
//! shared type or a [`ServiceError`]; it knows nothing of HTTP.

pub mod environments;
pub mod estimates;
pub mod health;
pub mod identity;
pub mod insights;
pub mod reservations;
pub mod run_groups;
pub mod runs;
pub mod schedules;
pub mod tests;
pub mod webhooks;

use shared::FieldErrors;

use crate::catalog::CatalogError;

/// Why a use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input that is malformed as a whole (not one field's value).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// No credentials, or wrong ones.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The state forbids it.
    #[error("{0}")]
    Conflict(String),
    /// Well-formed values that are not valid; each bad field named.
    #[error("{message}")]
    Invalid {
        message: String,
        fields: FieldErrors,
    },
    /// A cap is reached (queued runs, expensive requests at once);
    /// retrying shortly may succeed.
    #[error("{0}")]
    TooMany(String),
    #[error("the database cannot be reached")]
    Unavailable(String),
    /// A bug or a fault of the machine; the cause is for the log.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(fields: FieldErrors) -> ServiceError {
        let message = fields
            .iter()
            .map(|(field, why)| format!("{field} {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        ServiceError::Invalid { message, fields }
    }

    pub fn field(field: &str, why: impl Into<String>) -> ServiceError {
        ServiceError::invalid(FieldErrors::from([(field.to_string(), why.into())]))
    }

    pub fn internal(cause: impl std::fmt::Display) -> ServiceError {
        ServiceError::Internal(cause.to_string())
    }
}

impl From<diesel::result::Error> for ServiceError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => ServiceError::NotFound("not found".into()),
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info)
            | Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info) => {
                ServiceError::Unavailable(info.message().to_string())
            }
            Error::BrokenTransactionManager => {
                ServiceError::Unavailable("connection lost mid-transaction".into())
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for ServiceError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        ServiceError::Unavailable(error.to_string())
    }
}

impl From<CatalogError> for ServiceError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::NotFound(why) => ServiceError::NotFound(why),
            CatalogError::Conflict(why) => ServiceError::Conflict(why),
            CatalogError::Invalid(fields) => ServiceError::invalid(fields),
            CatalogError::Busy(why) => ServiceError::TooMany(why),
            CatalogError::Internal(why) => ServiceError::Internal(why),
        }
    }
}

/// What a missing row means, in words.
fn missing(what: impl std::fmt::Display) -> ServiceError {
    ServiceError::NotFound(format!("{what} does not exist"))
}
