//! The test process tree: started in its own process group under a small
//! supervisor (this binary, `supervise` mode) that kills the whole group
//! when the service dies or stops renewing its lease, and stopped by
//! signalling the group.
//!
//! The supervisor is `test-executor-supervise`, next to the service's
//! binary; where that is missing, the service's own binary in `supervise`
//! mode (slower to start: it loads libpq and its chain).
//!
//! The supervisor learns both through its stdin: the service writes a byte
//! after every lease renewal. End of file means the service is gone (even
//! by SIGKILL); silence past the watchdog deadline means it is paused or
//! cut off from the database, and the lease is about to pass to another
//! instance. Either way the group dies first.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The subcommand under which this binary supervises one test process.
pub const SUPERVISE: &str = "supervise";
/// The supervisor's own binary, looked for next to the service's.
const SUPERVISOR_BINARY: &str = "test-executor-supervise";
/// Names the service's pid to the supervisor, which checks it is still
/// its parent after arming the parent-death signal.
const PARENT_PID_VAR: &str = "TEST_EXECUTOR_PARENT_PID";
/// Milliseconds of heartbeat silence after which the supervisor kills.
const WATCHDOG_VAR: &str = "TEST_EXECUTOR_WATCHDOG_MS";

pub struct TestCommand<'a> {
    pub program: &'a str,
    pub args: Vec<OsString>,
    pub cwd: &'a Path,
    pub env: Vec<(String, String)>,
    pub remove_env: &'a [&'a str],
}

/// Starts the command under a supervisor, in a new process group whose id
/// is the returned child's pid. Output goes to `output`; the child's stdin
/// is the heartbeat (see [`heartbeat`]), and the group is killed after
/// `watchdog` without one.
pub fn spawn(
    command: &TestCommand,
    output: io::PipeWriter,
    watchdog: Duration,
) -> io::Result<Child> {
    let mut cmd = supervisor_command()?;
    cmd.arg("--")
        .arg(command.program)
        .args(&command.args)
        .current_dir(command.cwd)
        .stdin(Stdio::piped())
        .stdout(output.try_clone()?)
        .stderr(output)
        .env(PARENT_PID_VAR, std::process::id().to_string())
        .env(WATCHDOG_VAR, watchdog.as_millis().to_string())
        .process_group(0);
    for name in command.remove_env {
        cmd.env_remove(name);
    }
    for (name, value) in &command.env {
        cmd.env(name, value);
    }
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            // Fires when the thread that forks dies; runs are started from
            // their own thread, which lives as long as the process.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR1) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Where supervisors come from, settled once per process.
enum Supervisor {
    /// The supervisor binary, kept open since startup and executed through
    /// its descriptor: every run gets the file this service started with,
    /// even after a rebuild replaced it on disk.
    Binary(File),
    /// This very binary in `supervise` mode (through `/proc/self/exe`,
    /// which survives a replacement as well).
    ThisBinary,
}

static SUPERVISOR: OnceLock<Supervisor> = OnceLock::new();

/// Finds and opens the supervisor binary; called at startup, so that the
/// files of one build are used together.
pub fn prepare_supervisor() {
    SUPERVISOR.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| File::open(exe.with_file_name(SUPERVISOR_BINARY)).ok())
            .map_or(Supervisor::ThisBinary, Supervisor::Binary)
    });
}

fn supervisor_command() -> io::Result<Command> {
    prepare_supervisor();
    match SUPERVISOR.get() {
        Some(Supervisor::Binary(file)) => {
            // The forked child inherits the descriptor until it execs.
            let mut cmd = Command::new(format!("/proc/self/fd/{}", file.as_raw_fd()));
            cmd.arg0(SUPERVISOR_BINARY);
            Ok(cmd)
        }
        _ => {
            let this = Path::new("/proc/self/exe");
            let mut cmd = if this.exists() {
                Command::new(this)
            } else {
                Command::new(std::env::current_exe()?)
            };
            cmd.arg(SUPERVISE);
            Ok(cmd)
        }
    }
}

/// Tells the supervisor the lease was just renewed.
pub fn heartbeat(child: &mut Child) {
    if let Some(stdin) = child.stdin.as_mut() {
        // A supervisor that is gone cannot be told; nothing to do then.
        let _ = stdin.write_all(b".").and_then(|()| stdin.flush());
    }
}

pub fn signal_group(pgid: i32, signal: libc::c_int) {
    if pgid > 1 {
        // SAFETY: plain syscall; a stale group answers ESRCH.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Whether any live (not zombie) process is left in the group.
pub fn group_alive(pgid: i32) -> bool {
    // ESRCH: no process at all, zombies included, so no scan is needed.
    // SAFETY: signal 0 only checks; nothing is sent.
    if pgid > 1
        && unsafe { libc::kill(-pgid, 0) } != 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| parse_stat(&stat))
            .is_some_and(|(state, group)| group == pgid && state != 'Z' && state != 'X')
    })
}

/// State and process group from `/proc/<pid>/stat`; the command name in
/// parentheses may itself hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Kills a group left behind by a past life of this instance, and waits
/// (bounded) until it is gone.
pub fn kill_group_and_wait(pgid: i32, timeout: Duration) -> bool {
    signal_group(pgid, libc::SIGKILL);
    let deadline = Instant::now() + timeout;
    while group_alive(pgid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Set by the parent-death signal; the watchdog thread acts on it.
static PARENT_DIED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_parent_death(_: libc::c_int) {
    PARENT_DIED.store(true, std::sync::atomic::Ordering::SeqCst);
}

extern "C" fn ignore(_: libc::c_int) {}

/// Direct children of `parent`, from `/proc`.
fn children_of(parent: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = &stat[stat.rfind(')')? + 1..];
                    after.split_whitespace().nth(1)?.parse::<libc::pid_t>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// Whether this process has any child, running or not yet reaped; leaves
/// them all unreaped.
fn has_children() -> bool {
    // SAFETY: an all-zero siginfo_t is a valid value to be filled in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes only into `info`; WNOWAIT reaps nothing.
    let found = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    found == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ECHILD)
}

/// Kills every process descending from this supervisor, whatever its
/// process group or session: being a subreaper, orphans become our
/// children, so repeating "kill and reap my children" empties the tree.
fn kill_descendants() {
    // SAFETY: plain syscall.
    let me = unsafe { libc::getpid() };
    if !has_children() {
        // The usual end: the tests left nothing behind, so /proc need not
        // be scanned.
        return;
    }
    for _ in 0..500 {
        let children = children_of(me);
        if children.is_empty() {
            return;
        }
        for child in children {
            // SAFETY: signalling and reaping our own children.
            unsafe {
                libc::kill(child, libc::SIGKILL);
            }
        }
        let mut status = 0;
        // SAFETY: reaping any of our own children, without blocking.
        while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `supervise -- program args…`: runs the program in this process group
/// and exits with its status, after killing whatever it left behind. Kills
/// the whole tree if the service dies or stops its heartbeat. SIGINT and
/// SIGTERM sent to the group reach the program, not this supervisor, which
/// waits for the program to react to them.
pub fn supervise(args: &[OsString]) -> i32 {
    let args: Vec<&OsString> = args.iter().skip_while(|a| *a != "--").skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        let _ = writeln!(io::stderr(), "supervise: missing command");
        return 2;
    };
    // SAFETY: installing handlers that only touch an atomic, and making
    // this process the reaper of its orphaned descendants. Handlers
    // (unlike ignored signals) are reset to the default in the program we
    // exec, so it still reacts to SIGINT and SIGTERM.
    unsafe {
        libc::signal(
            libc::SIGUSR1,
            note_parent_death as *const () as libc::sighandler_t,
        );
        libc::signal(libc::SIGINT, ignore as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, ignore as *const () as libc::sighandler_t);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        // Started through a descriptor, the process would be named after
        // its number in `ps` and `top`.
        libc::prctl(libc::PR_SET_NAME, c"te-supervise".as_ptr());
    }
    let parent_ok = std::env::var(PARENT_PID_VAR)
        .ok()
        .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        // SAFETY: plain syscall.
        .is_none_or(|pid| pid == unsafe { libc::getppid() });
    if !parent_ok {
        // The service died before the parent-death signal was armed.
        return 1;
    }
    let watchdog = std::env::var(WATCHDOG_VAR)
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(Duration::from_millis);
    let child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .env_remove(PARENT_PID_VAR)
        .env_remove(WATCHDOG_VAR)
        .spawn();
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
        .spawn(move || watch_heartbeat(watchdog));
    let mut status: libc::c_int = 0;
    let code = loop {
        // SAFETY: waiting for our own child.
        let waited = unsafe { libc::waitpid(child.id() as libc::pid_t, &mut status, 0) };
        if waited >= 0 {
            break if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                1
            };
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break 1;
        }
    };
    // The tests are over; so is anything they started.
    kill_descendants();
    code
}

/// Kills the tree and exits when stdin ends (the service is gone), when
/// the parent-death signal came, or when stdin stays silent for `deadline`
/// (the service stopped renewing its lease).
fn watch_heartbeat(deadline: Option<Duration>) {
    const CHECK_EVERY: Duration = Duration::from_millis(100);
    let mut last_beat = Instant::now();
    let mut buffer = [0u8; 64];
    let give_up = |why: &str| -> ! {
        // The output pipe may be gone with the service: never panic on it.
        let _ = writeln!(io::stderr(), "test-executor: {why}; stopping the tests");
        kill_descendants();
        std::process::exit(137);
    };
    loop {
        if PARENT_DIED.load(std::sync::atomic::Ordering::SeqCst) {
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
        let mut poll = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout_ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: polling one valid descriptor we own.
        let ready = unsafe { libc::poll(&mut poll, 1, timeout_ms) };
        if ready <= 0 {
            continue;
        }
        // SAFETY: reading into a local buffer of the given size.
        let read =
            unsafe { libc::read(libc::STDIN_FILENO, buffer.as_mut_ptr().cast(), buffer.len()) };
        match read {
            0 => give_up("the service is gone"),
            n if n > 0 => last_beat = Instant::now(),
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => give_up("the heartbeat cannot be read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let stat = "1234 (py (test) x) S 1 4321 4321 0 -1 4194304";
        assert_eq!(parse_stat(stat), Some(('S', 4321)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn an_empty_group_is_not_alive() {
        assert!(!group_alive(i32::MAX - 7));
    }
}
