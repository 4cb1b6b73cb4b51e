//! Running tests: the scheduler that claims queued runs, the runner that
//! executes one, and the listener that hears what other instances do.

pub mod events;
pub mod listener;
pub mod retention;
pub mod runner;
pub mod scheduler;
pub mod webhooks;
