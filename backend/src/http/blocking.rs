//! Blocking work (diesel, the file system, child processes) off the async
//! threads, on actix's blocking pool.

use actix_web::web;

use super::error::ApiError;
use crate::db::{PgConn, PgPool};
use crate::service::ServiceError;

/// Runs `f` with a pooled connection on the blocking pool.
pub async fn with_db<T, F>(pool: &PgPool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConn) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    web::block(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::from)
}

/// Runs `f`, which needs no database, on the blocking pool.
pub async fn off_thread<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}
