//! The test catalog: what can be run, and uploads into it.

use gloo_net::http::Request;
use shared::{Catalog, Marker, UploadedFile};
use web_sys::{File, FormData};

use super::{get, request, ApiError};
use shared::ErrorCode;

pub async fn list() -> Result<Catalog, ApiError> {
    request(get("/api/tests")).await
}

/// The markers pytest knows for the tests root.
pub async fn markers() -> Result<Vec<Marker>, ApiError> {
    request(get("/api/tests/markers")).await
}

/// `POST /api/tests` as `multipart/form-data`; the browser sets the
/// boundary itself, so no content type is given here.
pub async fn upload(
    directory: &str,
    file: &File,
    overwrite: bool,
) -> Result<UploadedFile, ApiError> {
    let form = FormData::new()
        .and_then(|form| {
            form.append_with_str("directory", directory)?;
            form.append_with_blob_and_filename("file", file, &file.name())?;
            if overwrite {
                form.append_with_str("overwrite", "true")?;
            }
            Ok(form)
        })
        .map_err(|_| {
            ApiError::new(
                0,
                ErrorCode::BadRequest,
                "the upload form could not be built",
            )
        })?;
    request(Request::post("/api/tests").body(form)).await
}
