//! Service-level answers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when the service and its database answer.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    pub version: String,
}
