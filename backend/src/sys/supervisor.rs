//! `supervise [-- program args…]`: the small process each test process runs
//! under. It runs the program in its own process group, and kills the
//! program's whole tree (whatever group or session a descendant moved to)
//! when the program ends, when the service dies, or when the service stops
//! renewing its lease.
//!
//! Without a program on its command line, it waits for one on its stdin
//! (a [`Program`]): the service starts a spare supervisor ahead of time,
//! so that starting a run costs a write instead of an executable's
//! start-up.
//!
//! It learns about the service through its stdin: the service writes a
//! byte after every lease renewal, and [`KILL_TREE`] when a stop reached
//! its last step (the tree dies, then the supervisor). End of file means
//! the service is gone
//! (even by SIGKILL); silence past the watchdog deadline means it is
//! paused or cut off from the database, and the lease is about to pass to
//! another instance. Either way the tree dies first.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
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

/// The longest command a waiting supervisor accepts.
const MAX_PROGRAM_BYTES: usize = 16 << 20;

/// A program for a waiting supervisor to run, as the service sends it on
/// the supervisor's stdin: a 4-byte little-endian length, then that many
/// bytes of fields, each a tag byte, its bytes and a NUL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Program {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Where it runs; the supervisor's own directory if `None`.
    pub cwd: Option<OsString>,
    /// Variables set for it, on top of the supervisor's own.
    pub env: Vec<(OsString, OsString)>,
}

const PROGRAM_TAG: u8 = b'P';
const ARG_TAG: u8 = b'A';
const CWD_TAG: u8 = b'C';
const ENV_TAG: u8 = b'E';

impl Program {
    /// The message to write on a waiting supervisor's stdin.
    pub fn encode(&self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut field = |tag: u8, parts: &[&OsStr]| -> io::Result<()> {
            body.push(tag);
            for part in parts {
                if part.as_bytes().contains(&0) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("a NUL byte in {:?}", part.to_string_lossy()),
                    ));
                }
                body.extend_from_slice(part.as_bytes());
            }
            body.push(0);
            Ok(())
        };
        field(PROGRAM_TAG, &[&self.program])?;
        for arg in &self.args {
            field(ARG_TAG, &[arg])?;
        }
        if let Some(cwd) = &self.cwd {
            field(CWD_TAG, &[cwd])?;
        }
        for (name, value) in &self.env {
            if name.is_empty() || name.as_bytes().contains(&b'=') {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("not a variable name: {:?}", name.to_string_lossy()),
                ));
            }
            field(ENV_TAG, &[name, OsStr::new("="), value])?;
        }
        if body.len() > MAX_PROGRAM_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the command is too long",
            ));
        }
        let mut message = (body.len() as u32).to_le_bytes().to_vec();
        message.append(&mut body);
        Ok(message)
    }

    /// The fields of a message (without its length).
    pub fn decode(body: &[u8]) -> Result<Program, String> {
        let mut program = Program::default();
        let mut named = false;
        let fields = body.strip_suffix(&[0]).ok_or("a field is not ended")?;
        for field in fields.split(|b| *b == 0) {
            let (tag, bytes) = field.split_first().ok_or("an empty field")?;
            let value = OsString::from_vec(bytes.to_vec());
            match *tag {
                PROGRAM_TAG if named => return Err("a second program".into()),
                PROGRAM_TAG => {
                    program.program = value;
                    named = true;
                }
                ARG_TAG => program.args.push(value),
                CWD_TAG => program.cwd = Some(value),
                ENV_TAG => {
                    let at = bytes
                        .iter()
                        .position(|b| *b == b'=')
                        .filter(|at| *at > 0)
                        .ok_or("a variable without a name")?;
                    program.env.push((
                        OsString::from_vec(bytes[..at].to_vec()),
                        OsString::from_vec(bytes[at + 1..].to_vec()),
                    ));
                }
                other => return Err(format!("an unknown field {other:#x}")),
            }
        }
        if !named || program.program.is_empty() {
            return Err("no program".into());
        }
        Ok(program)
    }
}

/// Reads exactly `buf.len()` bytes from stdin, one system call at a time
/// (no buffer may swallow the heartbeats that follow); false at end of
/// file before the first byte.
fn read_exactly(buf: &mut [u8]) -> io::Result<bool> {
    let stdin = io::stdin();
    let mut filled = 0;
    while filled < buf.len() {
        match nix::unistd::read(stdin.as_raw_fd(), &mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Waits for the program to run on stdin; `None` when the service closed
/// it first (a spare it no longer needs, or a service that is gone).
fn receive_program() -> Result<Option<Program>, String> {
    let mut length = [0u8; 4];
    if !read_exactly(&mut length).map_err(|e| e.to_string())? {
        return Ok(None);
    }
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_PROGRAM_BYTES {
        return Err(format!("a command of {length} bytes"));
    }
    let mut body = vec![0u8; length];
    read_exactly(&mut body).map_err(|e| e.to_string())?;
    Program::decode(&body).map(Some)
}

/// Runs the program after `--` in `args`, or else the one that comes on
/// stdin, and answers its exit status (128 plus the signal if a signal
/// ended it), after killing whatever it left behind. SIGINT and SIGTERM
/// sent to the group reach the program, not this supervisor, which waits
/// for the program to react to them.
pub fn supervise(args: &[OsString]) -> i32 {
    let given: Vec<&OsString> = args.iter().skip_while(|a| *a != "--").skip(1).collect();
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
    let program = match given.split_first() {
        Some((program, rest)) => Program {
            program: (*program).clone(),
            args: rest.iter().map(|a| (*a).clone()).collect(),
            ..Program::default()
        },
        None => match receive_program() {
            Ok(Some(program)) => program,
            Ok(None) => return 0,
            Err(e) => {
                let _ = writeln!(io::stderr(), "supervise: a bad command: {e}");
                return 2;
            }
        },
    };
    let watchdog = std::env::var(WATCHDOG_VAR)
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(Duration::from_millis);
    let mut command = Command::new(&program.program);
    command
        .args(&program.args)
        .stdin(Stdio::null())
        .envs(program.env.iter().map(|(name, value)| (name, value)))
        // Last: the supervisor's own variables are not the program's, even
        // when the command names them.
        .env_remove(PARENT_PID_VAR)
        .env_remove(WATCHDOG_VAR)
        .env_remove(RUN_AS_VAR);
    if let Some(cwd) = &program.cwd {
        command.current_dir(cwd);
    }
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
                program.program.to_string_lossy()
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
/// (SIGUSR1) when the service dies, keeps its descriptors out of other
/// processes' reach, and names it for `ps`. SIGINT and SIGTERM get
/// handlers, not "ignore": handlers are reset in the program exec'd next,
/// so the program still reacts to them.
fn arm(parent_died: &Arc<AtomicBool>) -> io::Result<()> {
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(parent_died))?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::new(AtomicBool::new(false)))?;
    }
    prctl::set_pdeathsig(Signal::SIGUSR1)?;
    prctl::set_child_subreaper(true)?;
    // Nobody but root may open this process's descriptors through /proc:
    // tests running as the service's user could otherwise write a command
    // into a waiting spare's stdin. The program it starts is dumpable
    // again after its exec.
    prctl::set_dumpable(false)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(message: &[u8]) -> Result<Program, String> {
        let (length, body) = message.split_at(4);
        assert_eq!(
            u32::from_le_bytes(length.try_into().unwrap()) as usize,
            body.len()
        );
        Program::decode(body)
    }

    #[test]
    fn a_program_comes_through_byte_for_byte() {
        let program = Program {
            program: "python3".into(),
            args: vec![
                "-m".into(),
                "pytest".into(),
                OsString::from_vec(b"t\xffst_\xe9.py::test[a=b c]".to_vec()),
                "".into(),
            ],
            cwd: Some("/srv/tests dir".into()),
            env: vec![
                ("EXECUTOR_TOKEN".into(), "te_x=y".into()),
                ("EMPTY".into(), "".into()),
            ],
        };
        assert_eq!(decoded(&program.encode().unwrap()), Ok(program));
    }

    #[test]
    fn what_exec_could_not_take_is_refused_before_it_is_sent() {
        let with_nul = Program {
            program: "python3".into(),
            args: vec!["a\0b".into()],
            ..Program::default()
        };
        assert!(with_nul.encode().is_err());
        let bad_name = Program {
            program: "python3".into(),
            env: vec![("A=B".into(), "c".into())],
            ..Program::default()
        };
        assert!(bad_name.encode().is_err());
    }

    #[test]
    fn a_garbled_command_is_an_error() {
        for body in [
            &b""[..],
            b"P",
            b"Ppython3",
            b"\0",
            b"Xpython3\0",
            b"Aonly-an-arg\0",
            b"Ppy\0E=v\0",
        ] {
            assert!(Program::decode(body).is_err(), "{body:?}");
        }
        assert_eq!(
            Program::decode(b"Ppython3\0Ppython2\0"),
            Err("a second program".into())
        );
    }
}
