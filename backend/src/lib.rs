//! The test executor service: a REST API over a queue of pytest runs, one
//! at a time per test environment, coordinated through PostgreSQL.
//!
//! Layers, each using only those below it (see the README's architecture
//! section):
//!
//! - [`http`]: handlers, extractors, conditional GETs, OpenAPI, the error
//!   body; calls [`service`], and [`exec`] to wake or stop runs.
//! - [`service`]: the use cases (runs, environments, test files, insights)
//!   with their own error type; uses [`db`] and [`catalog`].
//! - [`exec`]: the scheduler, the runner and the listener for other
//!   instances' events; uses [`db`], [`catalog`] and [`sys`].
//! - [`db`], [`catalog`], [`sys`], [`telemetry`], [`junit`], [`secrets`]:
//!   the database, the tests root on disk, processes, logs and metrics, the
//!   JUnit XML format, random secrets; they use nothing above.

pub mod catalog;
pub mod config;
pub mod db;
pub mod exec;
pub mod hash;
pub mod http;
pub mod junit;
pub mod secrets;
pub mod service;
pub mod startup;
pub mod sys;
pub mod telemetry;
