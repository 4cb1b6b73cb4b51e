//! `test-executor-supervise -- program args…`: the supervisor each test
//! process runs under (see `runner::process`), as a binary of its own so
//! that starting it loads none of the service's shared libraries.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = backend::sys::supervisor::supervise(&args);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
