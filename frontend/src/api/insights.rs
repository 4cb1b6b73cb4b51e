//! How tests behaved over time: the history of a file's tests, and the
//! flaky, failing and slowest tests of the last days.

use shared::{EnvironmentHealth, HistoryItem, Insights, PassedElsewhere};

use super::{encode, get, request, ApiError};

/// The last `limit` results of every test of file `path`, newest first.
pub async fn file_history(path: &str, limit: usize) -> Result<Vec<HistoryItem>, ApiError> {
    request(get(&format!(
        "/api/tests/history?path={}&limit={limit}",
        encode(path)
    )))
    .await
}

pub async fn insights(days: u32) -> Result<Insights, ApiError> {
    request(get(&format!("/api/insights?days={days}"))).await
}

/// Every environment's health over the last `days` days, least healthy
/// first.
pub async fn environment_health(days: u32) -> Result<Vec<EnvironmentHealth>, ApiError> {
    request(get(&format!("/api/insights/environments?days={days}"))).await
}

/// Where each failed test of run `id` passed this week.
pub async fn passed_elsewhere(id: i64) -> Result<Vec<PassedElsewhere>, ApiError> {
    request(get(&format!("/api/runs/{id}/passed-elsewhere"))).await
}
