//! `supervise -- program args…`: the small process each test process runs
//! under. It runs the program in its own process group, and kills the
//! program's whole tree (whatever group or session a descendant moved to)
//! when the program ends, when the service dies, or when the service stops
//! renewing its lease.
//!
//! It learns about the service through its stdin: the service writes a
//! byte after every lease renewal, and [`KILL_TREE`] when a stop reached
//! its last step (the tree dies, then the supervisor). End of file means
//! the service is gone
//! (even by SIGKILL); silence past the watchdog deadline means it is
//! paused or cut off from the database, and the lease is about to pass to
//! another instance. Either way the tree dies first.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::prctl;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::{getpid, getppid, Pid};

use super::procfs;
use super::user::Ids;

/// Names the service's pid to the supervisor, which checks it is still
/// its parent after arming the parent-death signal.
pub const PARENT_PID_VAR: &str = "TEST_EXECUTOR_PARENT_PID";
/// Milliseconds of heartbeat silence after which the supervisor kills.
pub const WATCHDOG_VAR: &str = "TEST_EXECUTOR_WATCHDOG_MS";
/// The byte on stdin that asks for the whole tree to be killed now; any
/// other byte is a heartbeat.
pub const KILL_TREE: u8 = b'K';
/// `uid:gid:groups` the program runs as (`RUN_AS_USER`); the supervisor
/// itself keeps its rights.
pub const RUN_AS_VAR: &str = "TEST_EXECUTOR_RUN_AS";

/// Runs the program after `--` in `args` and answers its exit status (128
/// plus the signal if a signal ended it), after killing whatever it left
/// behind. SIGINT and SIGTERM sent to the group reach the program, not
/// this supervisor, which waits for the program to react to them.
pub fn supervise(args: &[OsString]) -> i32 {
    let args: Vec<&OsString> = args.iter().skip_while(|a| *a != "--").skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        let _ = writeln!(io::stderr(), "supervise: missing command");
        return 2;
    };
    let parent_died = Arc::new(AtomicBool::new(false));
    if let Err(e) = arm(&parent_died) {
        let _ = writeln!(io::stderr(), "supervise: cannot arm the supervisor: {e}");
        return 1;
    }
    let parent_ok = std::env::var(PARENT_PID_VAR)
        .ok()
        .and_then(|pid| pid.parse::<i32>().ok())
        .is_none_or(|pid| Pid::from_raw(pid) == getppid());
    if !parent_ok {
        // The service died before the parent-death signal was armed.
        return 1;
    }
    let watchdog = std::env::var(WATCHDOG_VAR)
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(Duration::from_millis);
    let mut command = Command::new(program);
    command
        .args(rest)
        .stdin(Stdio::null())
        .env_remove(PARENT_PID_VAR)
        .env_remove(WATCHDOG_VAR)
        .env_remove(RUN_AS_VAR);
    if let Some(raw) = std::env::var(RUN_AS_VAR).ok().filter(|v| !v.is_empty()) {
        let Some(ids) = Ids::parse(&raw) else {
            let _ = writeln!(io::stderr(), "supervise: bad {RUN_AS_VAR}: {raw:?}");
            return 127;
        };
        // SAFETY: between fork and exec the closure only makes the
        // setgroups/setgid/setuid system calls on data prepared before the
        // fork; it allocates nothing and takes no lock.
        unsafe {
            command.pre_exec(move || ids.switch());
        }
    }
    let child = command.spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "could not start {}: {e}",
                program.to_string_lossy()
            );
            return 127;
        }
    };
    let _ = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || watch_heartbeat(watchdog, &parent_died));
    let code = loop {
        match waitpid(Pid::from_raw(child.id() as i32), None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => break 1,
        }
    };
    // The tests are over; so is anything they started.
    kill_descendants();
    code
}

/// Makes this process the reaper of its orphaned descendants, has it told
/// (SIGUSR1) when the service dies, and names it for `ps`. SIGINT and
/// SIGTERM get handlers, not "ignore": handlers are reset in the program
/// exec'd next, so the program still reacts to them.
fn arm(parent_died: &Arc<AtomicBool>) -> io::Result<()> {
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(parent_died))?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::new(AtomicBool::new(false)))?;
    }
    prctl::set_pdeathsig(Signal::SIGUSR1)?;
    prctl::set_child_subreaper(true)?;
    // Started through a descriptor, the process would be named after its
    // number in `ps` and `top`.
    let _ = prctl::set_name(c"te-supervise");
    Ok(())
}

/// Whether this process has any child, running or not yet reaped; leaves
/// them all unreaped.
fn has_children() -> bool {
    let flags = WaitPidFlag::WEXITED
        | WaitPidFlag::WSTOPPED
        | WaitPidFlag::WCONTINUED
        | WaitPidFlag::WNOHANG
        | WaitPidFlag::WNOWAIT;
    waitid(Id::All, flags) != Err(Errno::ECHILD)
}

/// Kills every process descending from this supervisor, whatever its
/// process group or session: being a subreaper, orphans become our
/// children, so repeating "kill and reap my children" empties the tree.
pub fn kill_descendants() {
    if !has_children() {
        // The usual end: the tests left nothing behind, so /proc need not
        // be scanned.
        return;
    }
    let me = getpid().as_raw();
    for _ in 0..500 {
        let children: Vec<i32> = procfs::processes()
            .filter(|p| p.ppid == me)
            .map(|p| p.pid)
            .collect();
        if children.is_empty() {
            return;
        }
        for child in children {
            let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
        }
        while matches!(
            waitpid(None, Some(WaitPidFlag::WNOHANG)),
            Ok(status) if status != WaitStatus::StillAlive
        ) {}
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills the tree and exits when stdin ends (the service is gone), when
/// the parent-death signal came, or when stdin stays silent for `deadline`
/// (the service stopped renewing its lease).
fn watch_heartbeat(deadline: Option<Duration>, parent_died: &AtomicBool) {
    const CHECK_EVERY: Duration = Duration::from_millis(100);
    let mut last_beat = Instant::now();
    let mut buffer = [0u8; 64];
    let give_up = |why: &str| -> ! {
        // The output pipe may be gone with the service: never panic on it.
        let _ = writeln!(io::stderr(), "test-executor: {why}; stopping the tests");
        kill_descendants();
        std::process::exit(137);
    };
    let stdin = io::stdin();
    loop {
        if parent_died.load(Ordering::SeqCst) {
            give_up("the service is gone");
        }
        let left = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_sub(last_beat.elapsed());
                if left.is_zero() {
                    give_up("the service stopped renewing its lease");
                }
                left.min(CHECK_EVERY)
            }
            None => CHECK_EVERY,
        };
        let timeout =
            PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, timeout), Ok(ready) if ready > 0) {
            continue;
        }
        match nix::unistd::read(stdin.as_raw_fd(), &mut buffer) {
            Ok(0) => give_up("the service is gone"),
            Ok(n) if buffer[..n].contains(&KILL_TREE) => give_up("the run is being stopped"),
            Ok(_) => last_beat = Instant::now(),
            Err(Errno::EINTR) => {}
            Err(_) => give_up("the heartbeat cannot be read"),
        }
    }
}
