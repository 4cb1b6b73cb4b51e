//! `/metrics`: Prometheus' text format (see `crate::telemetry::metrics`).

use actix_web::{web, HttpResponse};

use crate::db;
use crate::http::blocking::with_db;
use crate::http::state::AppState;
use crate::service::ServiceError;
use crate::telemetry::metrics::{self, PoolFigures, ServiceFigures};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(scrape)));
}

/// Prometheus metrics of this instance and of the shared database.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses((status = 200, description = "Prometheus text format 0.0.4; without the database, \
        `test_executor_database_up 0` and no database figures", body = String, content_type = "text/plain"))
)]
pub async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    // A database that is away leaves the rest of the scrape intact.
    let database = with_db(&state.pool, |conn| {
        db::metrics::figures(conn).map_err(ServiceError::from)
    })
    .await
    .ok();
    let pool_figures = |name, pool: &crate::db::PgPool| {
        let now = pool.state();
        PoolFigures {
            name,
            connections: now.connections,
            idle: now.idle_connections,
            max: pool.max_size(),
        }
    };
    let service = ServiceFigures {
        instance: state.config.instance_id.clone(),
        version: env!("CARGO_PKG_VERSION"),
        local_runs: state.scheduler.running(),
        max_parallel_runs: state.config.max_parallel_runs,
        pools: vec![
            pool_figures("http", &state.pool),
            pool_figures("runner", state.scheduler.pool()),
        ],
    };
    let text = web::block(move || metrics::render(&service, database.as_ref()))
        .await
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
