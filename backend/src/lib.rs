//! The test executor service: a REST API over a queue of pytest runs, one
//! at a time per test environment, coordinated through PostgreSQL.

pub mod catalog;
pub mod config;
pub mod db;
pub mod error;
pub mod hash;
pub mod metrics;
pub mod routes;
pub mod runner;
pub mod scheduler;
pub mod startup;
pub mod state;
pub mod telemetry;
