//! The routes of the REST API, one module per area.

pub mod environments;
pub mod health;
pub mod identity;
pub mod insights;
pub mod metrics;
pub mod reservations;
pub mod run_groups;
pub mod runs;
pub mod schedules;
pub mod tests;
pub mod webhooks;

use actix_web::web;

pub fn config(cfg: &mut web::ServiceConfig) {
    // Insights first: `/api/tests/history` would otherwise be taken for a
    // test file by the catalog's `/api/tests/{path}`.
    cfg.configure(insights::config)
        .configure(runs::config)
        .configure(environments::config)
        .configure(reservations::config)
        .configure(run_groups::config)
        .configure(webhooks::config)
        .configure(schedules::config)
        .configure(tests::config)
        .configure(identity::config)
        .configure(health::config)
        .configure(metrics::config);
}
