//! The test catalog: test files under the tests root.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogFile {
    /// Relative to the tests root, with `/` separators.
    pub path: String,
    /// The parent directory, empty for the root.
    pub directory: String,
    pub name: String,
    pub size: u64,
    pub modified_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Catalog {
    pub directories: Vec<String>,
    pub files: Vec<CatalogFile>,
}

/// Answer of `POST /api/tests`.
pub type UploadedFile = CatalogFile;
