//! Reusable stateful behaviour of the pages.

pub mod use_connectivity;
pub mod use_polling;
pub mod use_run_log;
pub mod use_session;
pub mod use_start_run;
pub mod use_stored_username;
