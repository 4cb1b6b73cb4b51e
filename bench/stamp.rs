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
//!
//! Started as a warm start's interpreter (`-c` and the service's
//! bootstrap), it speaks that bootstrap's protocol instead of running it:
//! "ready" on descriptor 3, the run's command read there, its directory,
//! variables and output (descriptor 4) taken, and only then the start
//! stamp, so the figure ends where a cold start's would.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::io::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode, Stdio};
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

/// The run's arguments and output when started warm (see the top),
/// after its directory and environment were taken; `None` when cold.
fn warm_start(args: &[std::ffi::OsString]) -> Option<(Vec<std::ffi::OsString>, Stdio, Stdio)> {
    let bootstrap = args.get(1)?.to_str()?;
    if args[0] != "-c" || !bootstrap.starts_with("# test-executor warm start") {
        return None;
    }
    // SAFETY: the service's supervisor starts the bootstrap with its
    // channel on 3 and the run's output on 4, and nothing else uses them.
    let (mut channel, output) = unsafe { (File::from_raw_fd(3), File::from_raw_fd(4)) };
    let mut message = Vec::new();
    // Ready, with no directories read at start-up to watch.
    if channel.write_all(b"R\0\0\0\0").is_err() || channel.read_to_end(&mut message).is_err() {
        std::process::exit(0);
    }
    if message.len() < 5 {
        std::process::exit(0); // dismissed
    }
    let mut run_args = Vec::new();
    for field in message[4..message.len() - 1].split(|b| *b == 0) {
        let (tag, value) = field.split_first()?;
        let value = value.to_vec();
        match tag {
            b'C' => std::env::set_current_dir(std::ffi::OsString::from_vec(value)).ok()?,
            b'A' => run_args.push(std::ffi::OsString::from_vec(value)),
            b'E' => {
                let at = value.iter().position(|b| *b == b'=')?;
                let name = std::ffi::OsString::from_vec(value[..at].to_vec());
                let value = std::ffi::OsString::from_vec(value[at + 1..].to_vec());
                std::env::set_var(name, value);
            }
            b'U' => std::env::remove_var(std::ffi::OsString::from_vec(value)),
            _ => {}
        }
    }
    let error = output.try_clone().ok()?;
    Some((run_args, Stdio::from(output), Stdio::from(error)))
}

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut output = None;
    if let Some((run_args, stdout, stderr)) = warm_start(&args) {
        args = run_args;
        output = Some((stdout, stderr));
    }
    stamp("start", now_ns());
    let mode = std::env::var("BENCH_STAMP_MODE").unwrap_or_else(|_| "exec".into());
    let python = std::env::var("BENCH_REAL_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut command = Command::new(&python);
    command.args(&args);
    if let Some((stdout, stderr)) = output {
        command.stdout(stdout).stderr(stderr);
    }
    match mode.as_str() {
        "stub" => {
            stamp("end", now_ns());
            ExitCode::SUCCESS
        }
        "wrap" => {
            let status = command.status();
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
            let e = command.exec();
            eprintln!("stamp: cannot exec {python}: {e}");
            ExitCode::from(127)
        }
    }
}
