//! The `test-executor` binary: the service, or (as `supervise`) the small
//! supervisor each test process runs under.

use std::process::ExitCode;

use backend::config::Config;
use backend::sys::process;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == process::SUPERVISE) {
        let code = backend::sys::supervisor::supervise(&args[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    backend::telemetry::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match actix_web::rt::System::new().block_on(backend::startup::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the service stopped");
            eprintln!("test-executor: {e}");
            ExitCode::FAILURE
        }
    }
}
