//! `/api/tests`: the catalog of test files under the tests root, uploads
//! and deletions.

use actix_multipart::Multipart;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use shared::query::parse_bool;
use shared::{ApiErrorBody, Catalog, CatalogFile, Marker};
use std::io::Write;

use crate::catalog::upload::Upload;
use crate::http::blocking::{off_thread, with_db};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::service::identity::{self, Caller};
use crate::service::tests;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/tests")
            .route(web::get().to(list))
            .route(web::post().to(upload)),
    )
    // Before the files' catch-all: no test file is named `markers`.
    .service(web::resource("/api/tests/markers").route(web::get().to(markers)))
    .service(
        web::resource("/api/tests/{path:.*}")
            .route(web::get().to(source))
            .route(web::delete().to(delete)),
    );
}

/// The markers pytest knows for the tests root (its own, its plugins' and
/// those registered in the root's configuration), by name: what `markers`
/// of a run can name.
#[utoipa::path(
    get,
    path = "/api/tests/markers",
    tag = "tests",
    responses(
        (status = 200, description = "The markers, by name", body = Vec<Marker>),
    )
)]
pub async fn markers(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (cache, root) = (state.markers.clone(), state.tests_root.clone());
    let python = state.config.python.clone();
    let markers = off_thread(move || tests::markers(&cache, &root, &python)).await?;
    Ok(HttpResponse::Ok().json(markers))
}

/// The multipart form of an upload, for the OpenAPI document; the
/// [`UploadForm`] extractor reads it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadFormSchema {
    /// Directory under the tests root, existing or new (e.g.
    /// `uploads/payments`); empty or absent for the root.
    #[schema(nullable = false, example = "uploads/payments")]
    directory: Option<String>,
    /// The test file, named `test_*.py` or `*_test.py`; its source must
    /// compile as Python.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Replace a file of that name (`true`/`false`).
    #[schema(nullable = false)]
    overwrite: Option<bool>,
}

/// An upload as it streams in: text fields read into memory (each at most
/// [`MAX_TEXT_FIELD_BYTES`]), the file spooled to a temporary file outside
/// the tests root and refused as soon as it passes `UPLOAD_MAX_BYTES`.
/// Unknown parts are read and ignored, within the text limit.
pub struct UploadForm(Upload);

/// Text fields (directory, overwrite) are short.
const MAX_TEXT_FIELD_BYTES: usize = 4096;

impl FromRequest for UploadForm {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(0, |state| state.config.upload_max_bytes);
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
        let form = Multipart::new(req.headers(), payload.take());
        Box::pin(async move {
            if !is_form {
                return Err(ApiError::BadRequest(
                    "expected multipart/form-data with a file part and a directory field".into(),
                )
                .into());
            }
            Ok(UploadForm(read_upload(form, limit).await?))
        })
    }
}

async fn read_upload(mut form: Multipart, limit: u64) -> Result<Upload, ApiError> {
    let mut upload = Upload {
        directory: String::new(),
        file_name: None,
        overwrite: false,
        staged: None,
    };
    while let Some(field) = form.next().await {
        let mut field = field.map_err(bad_part)?;
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "directory" => upload.directory = text_field(&mut field, "directory").await?,
            "overwrite" => {
                let value = text_field(&mut field, "overwrite").await?;
                upload.overwrite = parse_bool(&value)
                    .map_err(|why| ApiError::field("overwrite", why))?
                    .unwrap_or(false);
            }
            "file" => {
                if upload.staged.is_some() {
                    return Err(ApiError::BadRequest("send exactly one file part".into()));
                }
                upload.file_name = Some(
                    field
                        .content_disposition()
                        .and_then(|cd| cd.get_filename())
                        .unwrap_or("")
                        .to_string(),
                );
                upload.staged = Some(spool_file(&mut field, limit).await?);
            }
            other => {
                let other = other.to_string();
                text_field(&mut field, &other).await?;
            }
        }
    }
    Ok(upload)
}

fn bad_part(e: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("malformed multipart body: {e}"))
}

/// Reads a short text field.
async fn text_field(field: &mut actix_multipart::Field, name: &str) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(bad_part)?;
        if bytes.len() + chunk.len() > MAX_TEXT_FIELD_BYTES {
            return Err(ApiError::TooLarge(format!(
                "the {name} field is over {MAX_TEXT_FIELD_BYTES} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| ApiError::field(name, "must be UTF-8 text"))
}

/// Streams the file part to a temporary file outside the tests root,
/// refusing it as soon as it passes the limit.
async fn spool_file(
    field: &mut actix_multipart::Field,
    limit: u64,
) -> Result<tempfile::NamedTempFile, ApiError> {
    let mut spool = web::block(tempfile::NamedTempFile::new)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let mut size = 0u64;
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(bad_part)?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(ApiError::TooLarge(format!(
                "the file is over the upload limit of {limit} bytes"
            )));
        }
        spool = web::block(move || spool.write_all(&chunk).map(|()| spool))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    }
    Ok(spool)
}

/// The test files and directories under the tests root, sorted by path.
#[utoipa::path(
    get,
    path = "/api/tests",
    tag = "tests",
    responses((status = 200, description = "The catalog", body = Catalog))
)]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let root = state.tests_root.clone();
    let catalog = off_thread(move || tests::list(&root)).await?;
    Ok(HttpResponse::Ok().json(catalog))
}

/// A test file's source.
#[utoipa::path(
    get,
    path = "/api/tests/{path}",
    tag = "tests",
    params(("path" = String, Path, description = "Relative path of a test file", example = "smoke/test_fast.py")),
    responses(
        (status = 200, description = "The source", body = String, content_type = "text/plain"),
        (status = 404, description = "No such test file", body = ApiErrorBody),
    )
)]
pub async fn source(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let root = state.tests_root.clone();
    let path = path.into_inner();
    let text = off_thread(move || tests::source(&root, &path)).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}

/// Upload a test file, written atomically.
#[utoipa::path(
    post,
    path = "/api/tests",
    tag = "tests",
    request_body(content = UploadFormSchema, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The file's catalog entry", body = CatalogFile,
            headers(("Location" = String, description = "`/api/tests/{path}`"))),
        (status = 400, description = "Not multipart/form-data, or a malformed part", body = ApiErrorBody),
        (status = 409, description = "The file exists (without `overwrite`)", body = ApiErrorBody),
        (status = 413, description = "The file is over UPLOAD_MAX_BYTES", body = ApiErrorBody),
        (status = 422, description = "Bad name, directory or Python source; `fields` says which", body = ApiErrorBody),
        (status = 429, description = "Too many uploads are being checked at once; retry after `Retry-After` seconds",
            body = ApiErrorBody, headers(("Retry-After" = String))),
    )
)]
pub async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    form: UploadForm,
) -> Result<HttpResponse, ApiError> {
    let UploadForm(upload) = form;
    let root = state.tests_root.clone();
    let python = state.config.python.clone();
    let stored = off_thread(move || tests::upload(&root, &python, upload)).await?;
    let (path, size) = (stored.path.clone(), stored.size);
    with_db(&state.pool, move |conn| {
        identity::audit(conn, &caller, "test.upload", path, format!("{size} bytes"))
    })
    .await?;
    tracing::info!(path = %stored.path, size = stored.size, "test file uploaded");
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/tests/{}", stored.path)))
        .json(stored))
}

/// Delete a test file that no queued or running run names.
#[utoipa::path(
    delete,
    path = "/api/tests/{path}",
    tag = "tests",
    params(("path" = String, Path, description = "Relative path of a test file", example = "smoke/test_fast.py")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such test file", body = ApiErrorBody),
        (status = 409, description = "A queued or running run names it", body = ApiErrorBody),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let path = path.into_inner();
    let root = state.tests_root.clone();
    with_db(&state.pool, move |conn| {
        tests::delete(conn, &root, &path)?;
        identity::audit(conn, &caller, "test.delete", path, "")
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
