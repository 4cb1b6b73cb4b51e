//! Service-level answers.

use serde::{Deserialize, Serialize};

use crate::ErrorDetail;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok` when the service and its database answer.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    pub version: String,
    /// Only on a 503: the error body of every 5xx answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}
