//! How tests behaved over time: the history of a file's tests, and the
//! flaky, failing and slowest tests of the last days.

use shared::{HistoryItem, Insights};

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
