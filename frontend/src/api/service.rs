//! The service's own state.

use shared::Health;

use super::{get, request, ApiError};

pub async fn health() -> Result<Health, ApiError> {
    request(get("/api/health")).await
}
