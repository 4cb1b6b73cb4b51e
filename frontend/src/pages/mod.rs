//! One component per screen.

pub mod audit;
pub mod board;
pub mod environment_edit;
pub mod environments;
pub mod health;
pub mod insights;
pub mod login;
pub mod new_run;
pub mod not_found;
pub mod password;
pub mod run_details;
pub mod run_group;
pub mod runs;
pub mod schedules;
pub mod tokens;
pub mod upload;
pub mod users;
pub mod webhooks;
