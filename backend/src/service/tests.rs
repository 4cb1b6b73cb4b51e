//! Test files: list, read, upload and delete them, never one that a queued
//! or running run names.

use diesel::prelude::*;
use shared::{Catalog, CatalogFile, Marker};

use super::ServiceError;
use crate::catalog::markers::MarkerCache;
use crate::catalog::upload::{self, Upload};
use crate::catalog::TestsRoot;
use crate::db;

pub fn list(root: &TestsRoot) -> Result<Catalog, ServiceError> {
    Ok(root.list()?)
}

/// The markers pytest knows for the tests root, by name.
pub fn markers(
    cache: &MarkerCache,
    root: &TestsRoot,
    python: &str,
) -> Result<Vec<Marker>, ServiceError> {
    Ok(cache.markers(root, python)?)
}

pub fn source(root: &TestsRoot, path: &str) -> Result<String, ServiceError> {
    Ok(root.read(path)?)
}

/// Checks and stores an uploaded file; reads and writes the disk only.
pub fn upload(root: &TestsRoot, python: &str, upload: Upload) -> Result<CatalogFile, ServiceError> {
    Ok(upload::store(root, python, upload)?)
}

/// Deletes a test file of the catalog that no queued or running run names,
/// under the catalog lock taken exclusively: no run can be created between
/// the check and the removal.
pub fn delete(conn: &mut PgConnection, root: &TestsRoot, path: &str) -> Result<(), ServiceError> {
    // 404 before 409: only a file of the catalog can be in use.
    root.test_file(path)?;
    db::runs::in_catalog_transaction(conn, true, |conn| {
        let file = path.trim_end_matches('/');
        if let Some(run_id) = db::runs::active_run_naming(conn, file)? {
            return Err(ServiceError::Conflict(format!(
                "run {run_id} is queued or running with {path}; cancel it or wait"
            )));
        }
        Ok(upload::delete(root, path)?)
    })
}
