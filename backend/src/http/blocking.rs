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
    with_db_after(pool, || Ok(()), move |conn, ()| f(conn)).await
}

/// Runs `first`, which needs no database, then `f` with its answer and a
/// pooled connection, in one trip to the blocking pool; the connection is
/// taken only once `first` has succeeded.
pub async fn with_db_after<P, T, G, F>(pool: &PgPool, first: G, f: F) -> Result<T, ApiError>
where
    G: FnOnce() -> Result<P, ServiceError> + Send + 'static,
    F: FnOnce(&mut PgConn, P) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    web::block(move || {
        let prepared = first()?;
        let mut conn = pool.get()?;
        f(&mut conn, prepared)
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
