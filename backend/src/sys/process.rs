//! The test process tree as the service sees it: started in its own process
//! group under a small supervisor (see [`super::supervisor`]), told about
//! lease renewals through the supervisor's stdin, and stopped by
//! signalling the group.
//!
//! The supervisor is `test-executor-supervise`, next to the service's
//! binary; where that is missing, the service's own binary in `supervise`
//! mode (slower to start: it loads libpq and its chain).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::procfs;
use super::supervisor::{
    warm_start_fits, Program, KILL_TREE, PARENT_PID_VAR, RUN_AS_VAR, WARM_ARG, WARM_MARKER_VAR,
    WATCHDOG_VAR,
};
use super::user::RunAs;

/// The subcommand under which this binary supervises one test process.
pub const SUPERVISE: &str = "supervise";
/// The supervisor's own binary, looked for next to the service's.
const SUPERVISOR_BINARY: &str = "test-executor-supervise";

pub struct TestCommand<'a> {
    pub program: &'a str,
    pub args: Vec<OsString>,
    pub cwd: &'a Path,
    pub env: Vec<(String, String)>,
}

/// What every supervisor of this service is started with, known before
/// its run is, so that one can be started ahead of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorSettings {
    /// The group is killed after this long without a heartbeat.
    pub watchdog: Duration,
    /// The service's variables that neither the supervisor nor the tests
    /// get.
    pub remove_env: Vec<String>,
    /// The interpreter a spare starts ahead of its run, and what every run
    /// gives it (see [`super::supervisor`]'s warm start); `None`: every
    /// run starts its own.
    pub warm: Option<Program>,
}

/// A supervisor, its stdin (the heartbeat) in `child`, and the read end
/// of the pipe its program's output goes to.
pub struct Started {
    pub child: Child,
    pub output: io::PipeReader,
    /// `NAME=value` in the environment of a warm start's interpreter (and
    /// of what it forks), which has no run variables in its own.
    pub warm_marker: Option<Vec<u8>>,
}

/// Starts the command under a supervisor, in a new process group whose id
/// is the returned child's pid. Its stdout and stderr go to the returned
/// pipe; the child's stdin is the heartbeat (see [`heartbeat`]), and the
/// group is killed after the settings' watchdog without one.
///
/// A spare supervisor started ahead of time takes the command when there
/// is one; the next spare is then started in the background.
pub fn spawn(command: &TestCommand, settings: &SupervisorSettings) -> io::Result<Started> {
    let mut env: Vec<(OsString, OsString)> = command
        .env
        .iter()
        .map(|(name, value)| (name.into(), value.into()))
        .collect();
    if let Some(user) = RUN_AS.get() {
        // Last, so that they win: whoever the tests run as, these say so.
        env.extend(run_as_env(user));
    }
    let program = Program {
        program: command.program.into(),
        args: command.args.clone(),
        cwd: Some(command.cwd.as_os_str().to_owned()),
        env,
        ..Program::default()
    };
    let message = program.encode()?;
    if let Some(template) = &settings.warm {
        // The next run is likely to be like this one: a spare need not
        // start an interpreter that such a run would only kill.
        let mut template = template.clone();
        if let Some(user) = RUN_AS.get() {
            template.env.extend(run_as_env(user));
        }
        SPARES
            .warm_fits
            .store(warm_start_fits(&template, &program), Ordering::Relaxed);
    }
    let spare = SPARES.take(settings);
    keep_a_spare(settings.clone());
    if let Some(mut started) = spare {
        if send(&mut started.child, &message).is_ok() {
            return Ok(started);
        }
        dismiss(started);
    }
    let mut started = start_supervisor(settings)?;
    if let Err(e) = send(&mut started.child, &message) {
        dismiss(started);
        return Err(e);
    }
    Ok(started)
}

/// Has a spare supervisor with these settings started (on a thread that
/// lives as long as the service: the parent-death signal follows the
/// thread that started a process) unless one is waiting already.
pub fn keep_a_spare(settings: SupervisorSettings) {
    let mut refill = SPARES.refill.lock().unwrap_or_else(|e| e.into_inner());
    let sender = refill.get_or_insert_with(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SupervisorSettings>();
        let spawned = std::thread::Builder::new()
            .name("spare-supervisor".into())
            .spawn(move || {
                while let Ok(settings) = rx.recv() {
                    // The start that took the last spare needs the CPUs
                    // first: its test process is being started right now.
                    std::thread::sleep(SPARE_DELAY);
                    SPARES.refill_with(settings);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no spare supervisors: every run starts its own");
        }
        tx
    });
    let _ = sender.send(settings);
}

/// How long after a spare was taken the next one is started.
const SPARE_DELAY: Duration = Duration::from_millis(20);

/// The spare supervisor, if one is waiting.
struct Spares {
    waiting: Mutex<Option<(SupervisorSettings, Started)>>,
    refill: Mutex<Option<Sender<SupervisorSettings>>>,
    /// Whether the last run could have taken a warm start.
    warm_fits: AtomicBool,
}

static SPARES: Spares = Spares {
    waiting: Mutex::new(None),
    refill: Mutex::new(None),
    warm_fits: AtomicBool::new(true),
};

impl SupervisorSettings {
    /// Whether a supervisor started with `other` serves these settings:
    /// with a warm start or without, the supervisor decides for itself.
    fn served_by(&self, other: &SupervisorSettings) -> bool {
        self.watchdog == other.watchdog && self.remove_env == other.remove_env
    }
}

impl Spares {
    /// The waiting spare, if it has these settings and is still alive.
    fn take(&self, settings: &SupervisorSettings) -> Option<Started> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting
            .as_ref()
            .is_none_or(|(theirs, _)| !settings.served_by(theirs))
        {
            return None;
        }
        let (_, mut started) = waiting.take()?;
        drop(waiting);
        if matches!(started.child.try_wait(), Ok(None)) {
            Some(started)
        } else {
            dismiss(started);
            None
        }
    }

    fn refill_with(&self, mut settings: SupervisorSettings) {
        let ready = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(theirs, _)| settings.served_by(theirs));
        if ready {
            return;
        }
        if !self.warm_fits.load(Ordering::Relaxed) {
            settings.warm = None;
        }
        match start_supervisor(&settings) {
            Ok(started) => {
                let replaced = self
                    .waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace((settings, started));
                if let Some((_, old)) = replaced {
                    dismiss(old);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot start a spare supervisor"),
        }
    }
}

/// Starts a supervisor that waits for its program on stdin.
fn start_supervisor(settings: &SupervisorSettings) -> io::Result<Started> {
    let (output, writer) = io::pipe()?;
    let mut cmd = supervisor_command()?;
    cmd.stdin(Stdio::piped())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    for name in &settings.remove_env {
        cmd.env_remove(name);
    }
    // The supervisor's own settings; the run's variables come with its
    // command and reach only the program.
    cmd.env(PARENT_PID_VAR, std::process::id().to_string())
        .env(WATCHDOG_VAR, settings.watchdog.as_millis().to_string());
    match RUN_AS.get() {
        // The supervisor stays root, out of the tests' reach, and can
        // always kill them; only the test process becomes the user.
        Some(user) => cmd.env(RUN_AS_VAR, user.ids()).envs(run_as_env(user)),
        None => cmd.env_remove(RUN_AS_VAR),
    };
    if settings.warm.is_some() {
        cmd.arg(WARM_ARG);
    }
    let child = cmd.spawn()?;
    // The command held the pipe's write ends: once it is gone, the pipe
    // reports end of file when the test tree closes it.
    drop(cmd);
    let mut started = Started {
        child,
        output,
        warm_marker: None,
    };
    if let Some(template) = &settings.warm {
        let (name, value) = (WARM_MARKER_VAR, next_warm_id());
        let mut template = template.clone();
        template.env.push((name.into(), value.clone().into()));
        if let Err(e) = template
            .encode()
            .and_then(|message| send(&mut started.child, &message))
        {
            dismiss(started);
            return Err(e);
        }
        started.warm_marker = Some(format!("{name}={value}").into_bytes());
    }
    Ok(started)
}

/// Tells one warm start from every other on this machine: this process's
/// number, its start and a count.
fn next_warm_id() -> String {
    static STARTED_AT: OnceLock<u128> = OnceLock::new();
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let started_at = STARTED_AT.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}.{started_at}.{count}", std::process::id())
}

/// The variables that name the user tests run as.
fn run_as_env(user: &RunAs) -> [(OsString, OsString); 3] {
    [
        ("HOME".into(), user.home.clone().into_os_string()),
        ("USER".into(), user.name.clone().into()),
        ("LOGNAME".into(), user.name.clone().into()),
    ]
}

/// Hands a waiting supervisor its program.
fn send(supervisor: &mut Child, message: &[u8]) -> io::Result<()> {
    let stdin = supervisor
        .stdin
        .as_mut()
        .ok_or_else(|| io::Error::other("the supervisor has no stdin"))?;
    stdin.write_all(message)?;
    stdin.flush()
}

/// Ends a supervisor that never got its program, and reaps it.
fn dismiss(mut started: Started) {
    drop(started.child.stdin.take());
    let _ = started.child.kill();
    let _ = started.child.wait();
}

/// The user tests run as, when not the service's own (`RUN_AS_USER`).
static RUN_AS: OnceLock<RunAs> = OnceLock::new();

/// Runs every test process from now on as `user`; set once, at start-up.
pub fn run_tests_as(user: RunAs) {
    let _ = RUN_AS.set(user);
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

/// Tells the supervisor, through its stdin, that the lease was just renewed.
pub fn heartbeat(supervisor: &mut ChildStdin) {
    // A supervisor that is gone cannot be told; nothing to do then.
    let _ = supervisor.write_all(b".").and_then(|()| supervisor.flush());
}

/// Asks the supervisor to kill the whole tree it supervises (whatever
/// group or session each process is in) and exit.
pub fn kill_tree(supervisor: &mut ChildStdin) {
    let _ = supervisor
        .write_all(&[KILL_TREE])
        .and_then(|()| supervisor.flush());
}

pub fn signal_group(pgid: i32, signal: Signal) {
    if pgid > 1 {
        // A group that is gone answers ESRCH: nothing left to signal.
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

/// Whether any live (not zombie) process is left in the group.
pub fn group_alive(pgid: i32) -> bool {
    // ESRCH: no process at all, zombies included, so no scan is needed.
    if pgid <= 1 || killpg(Pid::from_raw(pgid), None) == Err(Errno::ESRCH) {
        return false;
    }
    procfs::processes().any(|p| p.pgrp == pgid && p.is_live())
}

/// What tells group `pgid` from a later one that gets its number: this
/// boot's id and the start time of its leader, which must be alive.
pub fn group_identity(pgid: i32) -> (Option<String>, Option<u64>) {
    (procfs::boot_id(), procfs::stat(pgid).map(|s| s.start_ticks))
}

/// Whether group `pgid`, recorded with [`group_identity`]'s answer, may
/// still be the group that was started then, so that killing it kills
/// nothing else. Not after a reboot, nor when a process with another
/// start time now has the leader's number. A leader that is gone is fine:
/// the kernel gives no new process a number that a live process still
/// has as its group, so whatever is left in the group is the old one's.
/// Without a record (rows from before it was kept), no.
pub fn group_is_ours(pgid: i32, boot_id: Option<&str>, start_ticks: Option<u64>) -> bool {
    let (Some(boot_id), Some(start_ticks)) = (boot_id, start_ticks) else {
        return false;
    };
    if pgid <= 1 || procfs::boot_id().as_deref() != Some(boot_id) {
        return false;
    }
    procfs::stat(pgid).is_none_or(|leader| leader.start_ticks == start_ticks)
}

/// Kills every process whose environment holds one of `entries` (see
/// [`procfs::processes_with_env_entry`]), again until none is left or
/// `timeout` passed, and answers how many it killed: what a run's tests
/// left outside its group when their supervisor, which would have killed
/// them, is gone.
pub fn kill_marked(entries: &[Vec<u8>], timeout: Duration) -> usize {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + timeout;
    let mut killed = std::collections::HashSet::new();
    // A process in the middle of an exec shows no environment for that
    // moment: only a second empty look, a little later, ends the search.
    let mut empty_looks = 0;
    loop {
        let found: Vec<i32> = procfs::processes_with_env_entry(entries)
            .into_iter()
            .filter(|pid| *pid != me)
            .collect();
        empty_looks = if found.is_empty() { empty_looks + 1 } else { 0 };
        if empty_looks == 2 || Instant::now() > deadline {
            return killed.len();
        }
        for pid in found {
            if nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                killed.insert(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a group and waits (bounded) until it is gone; false if it is not.
pub fn kill_group_and_wait(pgid: i32, timeout: Duration) -> bool {
    signal_group(pgid, Signal::SIGKILL);
    let deadline = Instant::now() + timeout;
    while group_alive(pgid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn the_processes_with_a_mark_are_found_and_killed_and_no_other() {
        let me = std::process::id().to_string();
        let marks = [format!("TEST_MARK={me}"), format!("TEST_MARK_TOO={me}")]
            .map(String::into_bytes)
            .to_vec();
        let start = |name: &str, value: &str| {
            Command::new("sleep")
                .arg("30")
                .env(name, value)
                .spawn()
                .expect("sleep starts")
        };
        let mut marked = [start("TEST_MARK", &me), start("TEST_MARK_TOO", &me)];
        let mut other = start("TEST_MARK", "another run");
        let mut expected: Vec<i32> = marked.iter().map(|child| child.id() as i32).collect();
        expected.sort_unstable();
        // `spawn` returns before the exec has set up the new environment.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut found = procfs::processes_with_env_entry(&marks);
        while found.len() < expected.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            found = procfs::processes_with_env_entry(&marks);
        }
        found.sort_unstable();
        assert_eq!(found, expected);
        assert_eq!(kill_marked(&marks, Duration::from_secs(5)), 2);
        for child in &mut marked {
            assert_eq!(child.wait().unwrap().signal(), Some(Signal::SIGKILL as i32));
        }
        assert!(
            other.try_wait().unwrap().is_none(),
            "the other is untouched"
        );
        let _ = other.kill();
        let _ = other.wait();
        assert_eq!(kill_marked(&marks, Duration::from_secs(5)), 0);
    }

    #[test]
    fn an_empty_group_is_not_alive() {
        assert!(!group_alive(i32::MAX - 7));
    }

    #[test]
    fn a_group_is_ours_only_on_this_boot_with_its_leader_s_start_time() {
        let me = std::process::id() as i32;
        let (boot, ticks) = group_identity(me);
        assert!(boot.is_some() && ticks.is_some());
        assert!(group_is_ours(me, boot.as_deref(), ticks));
        let later = ticks.map(|t| t + 1);
        assert!(!group_is_ours(me, boot.as_deref(), later), "pid reused");
        assert!(!group_is_ours(me, Some("another-boot"), ticks), "rebooted");
        assert!(!group_is_ours(me, None, None), "nothing recorded");
        assert!(
            group_is_ours(i32::MAX - 7, boot.as_deref(), ticks),
            "a gone leader's number is not reused while its group lives"
        );
    }
}
