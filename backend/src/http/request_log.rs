//! The request log: one line per HTTP request, which feeds the HTTP
//! metrics too.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::telemetry::metrics;

/// Counts a request in flight until it is answered or dropped.
struct InFlight;

impl InFlight {
    fn start() -> InFlight {
        metrics::global().request_started();
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::global().request_done();
    }
}

/// Logs each request (target `backend::http`) and times it by route
/// pattern for `/metrics`. Successful reads, which browsers repeat every
/// second, are logged at debug level (`RUST_LOG=info,backend::http=debug`
/// shows them); writes and errors at info. Requests about one run carry
/// its `run_id`.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let in_flight = InFlight::start();
    let method = req.method().clone();
    let path = req.path().to_string();
    let result = next.call(req).await;
    let took = started.elapsed();
    drop(in_flight);
    let (status, route, run_id) = match &result {
        Ok(res) => {
            let route = res.request().match_pattern();
            let run_id = route
                .as_deref()
                .filter(|r| r.starts_with("/api/runs/{id}"))
                .and_then(|_| res.request().match_info().get("id"))
                .and_then(|id| id.parse::<i64>().ok());
            (res.status().as_u16(), route, run_id)
        }
        Err(e) => (e.as_response_error().status_code().as_u16(), None, None),
    };
    // Unknown paths share one series: each would otherwise make its own.
    let route = route.unwrap_or_else(|| "unmatched".into());
    metrics::global().request_finished(method.as_str(), &route, status, took);
    let duration_ms = (took.as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
    let read = method == actix_web::http::Method::GET || method == actix_web::http::Method::HEAD;
    if read && status < 400 {
        tracing::debug!(target: "backend::http", method = %method, %route, %path, status,
            duration_ms, run_id, "request");
    } else {
        tracing::info!(target: "backend::http", method = %method, %route, %path, status,
            duration_ms, run_id, "request");
    }
    result
}
