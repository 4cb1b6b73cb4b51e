//! The benchmark's stand-in for `PYTHON`: records when the test process
//! starts (and, unless it execs, when it ends), then does what the mode
//! says. Built by scripts/bench.sh with plain `rustc -O`, no dependencies,
//! so that its own start-up (well under a millisecond) does not blur the
//! figures it measures.
//!
//! Environment (inherited from the backend through its supervisor):
//!   BENCH_STAMP_FILE   file to append `start|end <run id> <unix ns>` lines to
//!   BENCH_REAL_PYTHON  the interpreter to run
//!   BENCH_STAMP_MODE   `exec`: stamp, then exec the interpreter (no end stamp)
//!                      `wrap`: stamp, run it, stamp its exit, exit alike
//!                      `stub`: stamp start and end, exit 0 without Python

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// One `write` per line on an O_APPEND file: lines of parallel runs never mix.
fn stamp(kind: &str, at: u128) {
    let Ok(path) = std::env::var("BENCH_STAMP_FILE") else {
        return;
    };
    let run = std::env::var("TEST_RUN_ID").unwrap_or_else(|_| "0".into());
    let line = format!("{kind} {run} {at}\n");
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(line.as_bytes());
    }
}

fn main() -> ExitCode {
    stamp("start", now_ns());
    let mode = std::env::var("BENCH_STAMP_MODE").unwrap_or_else(|_| "exec".into());
    let python = std::env::var("BENCH_REAL_PYTHON").unwrap_or_else(|_| "python3".into());
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match mode.as_str() {
        "stub" => {
            stamp("end", now_ns());
            ExitCode::SUCCESS
        }
        "wrap" => {
            let status = Command::new(&python).args(&args).status();
            stamp("end", now_ns());
            match status {
                Ok(status) => {
                    let code = status
                        .code()
                        .or_else(|| status.signal().map(|s| 128 + s))
                        .unwrap_or(1);
                    ExitCode::from(u8::try_from(code).unwrap_or(1))
                }
                Err(e) => {
                    eprintln!("stamp: cannot run {python}: {e}");
                    ExitCode::from(127)
                }
            }
        }
        _ => {
            let e = Command::new(&python).args(&args).exec();
            eprintln!("stamp: cannot exec {python}: {e}");
            ExitCode::from(127)
        }
    }
}
