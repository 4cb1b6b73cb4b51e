//! `/api/tests`: the catalog of test files under the tests root.

use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/tests").route(web::get().to(list)))
        .service(web::resource("/api/tests/{path:.*}").route(web::get().to(source)));
}

async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let root = state.tests_root.clone();
    let catalog = web::block(move || root.list())
        .await
        .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(catalog))
}

async fn source(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let root = state.tests_root.clone();
    let path = path.into_inner();
    let text = web::block(move || root.read(&path))
        .await
        .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}
