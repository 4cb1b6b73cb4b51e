//! The operating system side of running tests: process groups and signals,
//! `/proc`, and the supervisor each test process runs under.

pub mod process;
pub mod procfs;
pub mod supervisor;
pub mod user;
