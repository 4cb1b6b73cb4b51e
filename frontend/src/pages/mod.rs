//! One component per screen.

pub mod board;
pub mod environment_edit;
pub mod environments;
pub mod health;
pub mod insights;
pub mod new_run;
pub mod not_found;
pub mod run_details;
pub mod run_group;
pub mod runs;
pub mod schedules;
pub mod upload;
pub mod webhooks;
