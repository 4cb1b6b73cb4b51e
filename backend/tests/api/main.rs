//! Black-box tests of the service: each spawns the real binary on a
//! database of its own and speaks the REST API to it.

// A test crate: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod artifacts;
mod catalog;
mod ci;
mod database;
mod environments;
mod errors;
mod health;
mod helpers;
mod identity;
mod insights;
mod operations;
mod outcomes;
mod polling;
mod pools;
mod reliability;
mod retention;
mod runner;
mod runs;
mod schedules;
mod scheduling;
mod security;
mod selection;
mod sharing;
mod uploads;
mod webhooks;
