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
//! A spare may also start the test interpreter ahead of time (a
//! [`WarmStart`]): started with [`WARM_ARG`], it reads a first message, the
//! interpreter and the variables every run gives it, starts that
//! interpreter on a small bootstrap that waits, and hands it the run's
//! command when it comes, if nothing the interpreter reads as it starts
//! differs; otherwise it starts the command cold, as without.
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

/// On a spare's command line (before any `--`): read a warm start's
/// template first (see [`WarmStart`]).
pub const WARM_ARG: &str = "--warm";
/// Names the processes of one warm start in their environment, the way
/// the run's own variables name a cold start's.
pub const WARM_MARKER_VAR: &str = "TEST_EXECUTOR_WARM";

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
    /// Variables removed from its environment (a warm start's only).
    pub unset: Vec<OsString>,
}

const PROGRAM_TAG: u8 = b'P';
const ARG_TAG: u8 = b'A';
const CWD_TAG: u8 = b'C';
const ENV_TAG: u8 = b'E';
const UNSET_TAG: u8 = b'U';

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
        for name in &self.unset {
            field(UNSET_TAG, &[name])?;
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
                UNSET_TAG => program.unset.push(value),
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
    let warm_wanted = args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == WARM_ARG);
    close_inherited_descriptors();
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
    let mut warm = None;
    let program = match given.split_first() {
        Some((program, rest)) => Program {
            program: (*program).clone(),
            args: rest.iter().map(|a| (*a).clone()).collect(),
            ..Program::default()
        },
        None => {
            if warm_wanted {
                match receive_program() {
                    // A warm start that cannot start leaves a cold one.
                    Ok(Some(template)) => warm = WarmStart::start(template).ok(),
                    Ok(None) => return 0,
                    Err(e) => {
                        let _ = writeln!(io::stderr(), "supervise: a bad warm start: {e}");
                        return 2;
                    }
                }
            }
            let received = receive_program();
            if !matches!(received, Ok(Some(_))) {
                // Dismissed, or garbled: the waiting interpreter goes too,
                // and whatever it started.
                drop(warm.take());
                kill_descendants();
            }
            match received {
                Ok(Some(program)) => program,
                Ok(None) => return 0,
                Err(e) => {
                    let _ = writeln!(io::stderr(), "supervise: a bad command: {e}");
                    return 2;
                }
            }
        }
    };
    let watchdog = std::env::var(WATCHDOG_VAR)
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(Duration::from_millis);
    let mut command = match command_for(&program) {
        Ok(command) => command,
        Err(e) => {
            let _ = writeln!(io::stderr(), "supervise: {e}");
            return 127;
        }
    };
    command.args(&program.args);
    // The warm start's channel is kept open for as long as the run goes
    // (see `WarmStart::go`).
    let (child, _warm_channel) = match warm.and_then(|warm| warm.go(&program)) {
        Some((child, channel)) => (Ok(child), Some(channel)),
        None => {
            // Whatever a warm start left (one that did not fit, or never
            // got ready) goes before the cold start.
            kill_descendants();
            (command.spawn(), None)
        }
    };
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

/// The bootstrap a warm start's interpreter runs (`python -c`): it says it
/// is ready on descriptor 3 (`R`, a length, then each directory on its
/// `sys.path` and its modification time in nanoseconds, each ended by a
/// NUL), reads the run's command there until end of
/// file, and then becomes `python -m <module> <args>` as a cold start would
/// have been: the run's directory, variables and output (descriptor 4
/// becomes stdout and stderr), `sys.argv`, `sys.orig_argv` and
/// `sys.path[0]`, and no name of its own left in `__main__`. End of file
/// with nothing read means the spare was dismissed.
pub const WARM_BOOTSTRAP: &str = r#"# test-executor warm start
def _test_executor_warm_start():
    import os, sys
    try:
        # Ready, with the directories it started from, as it saw them.
        read = b"".join(
            os.fsencode(p) + b"\0" + str(os.stat(p).st_mtime_ns).encode() + b"\0"
            for p in sys.path if p and os.path.isdir(p)
        )
        os.write(3, b"R" + len(read).to_bytes(4, "little") + read)
        parts = []
        while True:
            part = os.read(3, 1 << 16)
            if not part:
                break
            parts.append(part)
        os.close(3)
    except OSError as e:
        # The channel broke: the run, if one came, is told on its output.
        os.write(4, ("could not start %s: %s\n" % (sys.executable, e)).encode())
        os._exit(127)
    message = b"".join(parts)
    if not message:
        os._exit(0)
    cwd, args, env, unset = None, [], {}, []
    for field in message[4:-1].split(b"\0"):
        tag, value = field[:1], field[1:]
        if tag == b"C":
            cwd = value
        elif tag == b"A":
            args.append(os.fsdecode(value))
        elif tag == b"E":
            name, _, value = value.partition(b"=")
            env[name] = value
        elif tag == b"U":
            unset.append(value)
    os.dup2(4, 1)
    os.dup2(4, 2)
    os.close(4)
    try:
        if cwd is not None:
            os.chdir(cwd)
    except OSError as e:
        os.write(2, ("could not start %s: %s\n" % (sys.executable, e)).encode())
        os._exit(127)
    for name in unset:
        os.environb.pop(name, None)
    os.environb.update(env)
    if sys.path and sys.path[0] == "" and not getattr(sys.flags, "safe_path", False):
        sys.path[0] = os.getcwd()
    sys.argv = ["-m"] + args[2:]
    if hasattr(sys, "orig_argv"):  # Python 3.10 and later
        sys.orig_argv = sys.orig_argv[:1] + args
    del globals()["_test_executor_warm_start"]
    return args[1]
__import__("runpy")._run_module_as_main(_test_executor_warm_start())
"#;

/// How long a run waits for its warm interpreter to say it is ready (it
/// may still be starting) before it is started cold instead.
const WARM_READY_WAIT: Duration = Duration::from_secs(3);

/// An interpreter started ahead of its run, waiting in [`WARM_BOOTSTRAP`].
struct WarmStart {
    /// Taken by a run; killed and reaped with this when not.
    child: Option<std::process::Child>,
    channel: std::os::unix::net::UnixStream,
    /// The interpreter's stdout and stderr until its run comes.
    start_up_output: io::PipeReader,
    template: Program,
    /// Just after it was started.
    started_at: std::time::SystemTime,
}

impl WarmStart {
    /// Starts `template.program -c WARM_BOOTSTRAP` as its command would be
    /// started, with the template's variables and directory, stdout and
    /// stderr kept apart until its run comes, the channel on descriptor 3
    /// and the run's output on 4.
    fn start(template: Program) -> io::Result<WarmStart> {
        use std::os::unix::net::UnixStream;
        let (channel, theirs) = UnixStream::pair()?;
        let channel = UnixStream::from(above_four(channel.into())?);
        let theirs = above_four(theirs.into())?;
        let (start_up_output, start_up_writer) = io::pipe()?;
        let start_up_output = io::PipeReader::from(above_four(start_up_output.into())?);
        let start_up_writer = above_four(start_up_writer.into())?;
        // Inherited without close-on-exec by the child alone: they stay
        // taken until the spawn (its own pipe gets other numbers), and are
        // closed here on every way out.
        let _channel_at_3 = at_number(theirs.as_fd(), 3)?;
        let _output_at_4 = at_number(io::stdout().as_fd(), 4)?;
        drop(theirs);
        let mut command = command_for(&template)?;
        command
            .arg("-c")
            .arg(WARM_BOOTSTRAP)
            .stdout(Stdio::from(start_up_writer.try_clone()?))
            .stderr(Stdio::from(start_up_writer));
        let spawned = command.spawn();
        // The pipe's write ends go with the command.
        drop(command);
        let child = spawned?;
        Ok(WarmStart {
            child: Some(child),
            channel,
            start_up_output,
            template,
            started_at: std::time::SystemTime::now(),
        })
    }

    /// Waits (at most [`WARM_READY_WAIT`]) for the interpreter to say it
    /// is ready, and answers the directories it started from, each with
    /// its modification time (nanoseconds) as the interpreter saw it.
    fn ready(&mut self) -> Option<Vec<(std::path::PathBuf, i128)>> {
        use std::io::Read;
        self.channel.set_read_timeout(Some(WARM_READY_WAIT)).ok()?;
        let mut head = [0u8; 5];
        self.channel.read_exact(&mut head).ok()?;
        let length = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if head[0] != b'R' || length > MAX_PROGRAM_BYTES {
            return None;
        }
        let mut read = vec![0u8; length];
        self.channel.read_exact(&mut read).ok()?;
        if read.is_empty() {
            return Some(Vec::new());
        }
        let fields: Vec<&[u8]> = read.strip_suffix(&[0])?.split(|b| *b == 0).collect();
        fields
            .chunks(2)
            .map(|pair| match pair {
                [path, seen] => Some((
                    OsStr::from_bytes(path).into(),
                    std::str::from_utf8(seen).ok()?.parse().ok()?,
                )),
                _ => None,
            })
            .collect()
    }

    /// Whether one of `directories` changed since the interpreter read it
    /// (a package installed since, say, whose `.pth` file it never read),
    /// or changed so close to its start that it may have read either
    /// state: file times come from a clock a tick or two behind.
    fn stale(&self, directories: &[(std::path::PathBuf, i128)]) -> bool {
        let nanos = |time: std::time::SystemTime| {
            time.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as i128)
        };
        let started = nanos(self.started_at) - Duration::from_millis(10).as_nanos() as i128;
        directories.iter().any(|(directory, seen)| {
            let now = std::fs::metadata(directory)
                .and_then(|meta| meta.modified())
                .map(nanos);
            *seen >= started || now.map_or(true, |now| now != *seen)
        })
    }

    /// What the interpreter wrote as it started (a `.pth` file's error, a
    /// warning), into the run's output ahead of the rest, as a cold start
    /// would have it. A program that never gets ready writes nowhere.
    fn pass_on_start_up_output(&mut self) {
        let fd = self.start_up_output.as_raw_fd();
        let Ok(flags) = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL) else {
            return;
        };
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags)).is_err() {
            return;
        }
        let mut buffer = [0u8; 16 << 10];
        let mut stdout = io::stdout().lock();
        while let Ok(n @ 1..) = io::Read::read(&mut self.start_up_output, &mut buffer) {
            let _ = stdout.write_all(&buffer[..n]);
        }
        let _ = stdout.flush();
    }

    /// Hands `program` to the waiting interpreter, once it is ready, if
    /// it is what a cold start of `program` would have started; `None`
    /// (the interpreter killed) otherwise.
    /// The channel comes along: closed while the interpreter may still
    /// have sent something unread, it would lose what it was sent.
    fn go(
        mut self,
        program: &Program,
    ) -> Option<(std::process::Child, std::os::unix::net::UnixStream)> {
        let (warm_env, run_env) = (environment_for(&self.template), environment_for(program));
        if !fits(&self.template, program, &warm_env, &run_env) {
            return None;
        }
        let directories = self.ready()?;
        if self.stale(&directories) || !matches!(self.child.as_mut()?.try_wait(), Ok(None)) {
            return None;
        }
        self.pass_on_start_up_output();
        // What differs from the interpreter's own start: whatever a
        // launcher (a pyenv shim, a wrapper) added to that stays, as it
        // would in a cold start.
        let message = Program {
            program: program.program.clone(),
            args: program.args.clone(),
            cwd: program.cwd.clone(),
            unset: warm_env
                .keys()
                .filter(|name| !run_env.contains_key(*name))
                .cloned()
                .collect(),
            env: run_env
                .into_iter()
                .filter(|(name, value)| warm_env.get(name) != Some(value))
                .collect(),
        }
        .encode()
        .ok()?;
        // Taken before the interpreter has its command: past that point,
        // nothing may fail and have it killed.
        let channel = self.channel.try_clone().ok()?;
        self.channel.write_all(&message).ok()?;
        self.channel.shutdown(std::net::Shutdown::Write).ok()?;
        Some((self.child.take()?, channel))
    }
}

impl Drop for WarmStart {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `program` can be handed to an interpreter started warm with
/// `template`: the same interpreter and directory, a `-m` start, and the
/// same start-up (see [`same_start_up`]), both on top of this process's
/// own variables.
pub fn warm_start_fits(template: &Program, program: &Program) -> bool {
    fits(
        template,
        program,
        &environment_for(template),
        &environment_for(program),
    )
}

/// [`warm_start_fits`], with both environments at hand.
fn fits(
    template: &Program,
    program: &Program,
    warm_env: &Environment,
    run_env: &Environment,
) -> bool {
    template.program == program.program
        && template.cwd == program.cwd
        && program.args.len() >= 2
        && program.args[0] == "-m"
        && same_start_up(warm_env, run_env)
}

/// A copy of `fd` under `number`, which must be free (nothing of ours is
/// lost), open across an exec; closed when dropped.
fn at_number(fd: std::os::fd::BorrowedFd<'_>, number: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if nix::fcntl::fcntl(number, nix::fcntl::FcntlArg::F_GETFD).is_ok() {
        return Err(io::Error::other(format!("descriptor {number} is taken")));
    }
    nix::unistd::dup2(fd.as_raw_fd(), number)?;
    // SAFETY: `dup2` just made `number`, which was free, and nothing else
    // owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(number) })
}

/// The same descriptor under a number above 4 (closed on exec), the old
/// one closed: 3 and 4 are a warm start's.
fn above_four(fd: std::os::fd::OwnedFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let raw = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(5))?;
    // SAFETY: `fcntl` just made `raw`, and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}

/// The command that starts `program` (without its arguments): its
/// variables on top of this supervisor's own, which are not the
/// program's, stdin on /dev/null, its directory and its user.
fn command_for(program: &Program) -> io::Result<Command> {
    let mut command = Command::new(&program.program);
    command
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
        let ids = Ids::parse(&raw).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad {RUN_AS_VAR}: {raw:?}"),
            )
        })?;
        // SAFETY: between fork and exec the closure only makes the
        // setgroups/setgid/setuid system calls on data prepared before the
        // fork; it allocates nothing and takes no lock.
        unsafe {
            command.pre_exec(move || ids.switch());
        }
    }
    Ok(command)
}

/// A process's variables, by name.
type Environment = std::collections::BTreeMap<OsString, OsString>;

/// The whole environment `program` is started with (see [`command_for`]).
fn environment_for(program: &Program) -> Environment {
    let mut env: Environment = std::env::vars_os().collect();
    env.extend(program.env.iter().cloned());
    for own in [PARENT_PID_VAR, WATCHDOG_VAR, RUN_AS_VAR] {
        env.remove(OsStr::new(own));
    }
    env
}

/// Whether the interpreter starts alike with either environment: every
/// variable that Python, its loader, its C library or a launcher like
/// pyenv reads as it starts has the same value (or is unset) in both.
/// The others are read after the start, when the run's are in place.
fn same_start_up(warm: &Environment, run: &Environment) -> bool {
    warm.keys()
        .chain(run.keys())
        .filter(|name| read_at_start_up(name))
        .all(|name| warm.get(name) == run.get(name))
}

fn read_at_start_up(name: &OsStr) -> bool {
    const PREFIXES: [&[u8]; 5] = [b"PYTHON", b"PYENV", b"LC_", b"LD_", b"MALLOC_"];
    const NAMES: [&[u8]; 8] = [
        b"LANG",
        b"LANGUAGE",
        b"HOME",
        b"PATH",
        b"TZ",
        b"GLIBC_TUNABLES",
        b"VIRTUAL_ENV",
        b"__PYVENV_LAUNCHER__",
    ];
    let name = name.as_bytes();
    NAMES.contains(&name) || PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// Closes every descriptor but stdin, stdout and stderr: one that the
/// service opened without close-on-exec (a library reading a file on
/// another thread as this supervisor was forked) is none of the tests'.
fn close_inherited_descriptors() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    // Listed first: the listing's own descriptor is among them.
    let open: Vec<i32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open.into_iter().filter(|fd| *fd > 2) {
        let _ = nix::unistd::close(fd);
    }
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
            unset: vec!["GONE".into()],
        };
        assert_eq!(decoded(&program.encode().unwrap()), Ok(program));
    }

    #[test]
    fn only_a_variable_read_at_start_up_keeps_a_run_from_its_warm_interpreter() {
        let env = |pairs: &[(&str, &str)]| -> Environment {
            pairs
                .iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect()
        };
        let warm = env(&[("PATH", "/usr/bin"), ("PYTHONPATH", "/plugin")]);
        let same = env(&[
            ("PATH", "/usr/bin"),
            ("PYTHONPATH", "/plugin"),
            ("TEST_RUN_ID", "7"),
            ("BASE_URL", "http://x"),
        ]);
        assert!(same_start_up(&warm, &same));
        for (name, value) in [
            ("PYTHONPATH", "/plugin:/theirs"),
            ("PYTHONHASHSEED", "0"),
            ("LC_ALL", "C"),
            ("LANG", "C"),
            ("LD_PRELOAD", "/x.so"),
            ("PATH", "/opt/bin"),
            ("HOME", "/home/x"),
            ("PYENV_VERSION", "3.12"),
        ] {
            let mut run = same.clone();
            run.insert(name.into(), value.into());
            assert!(!same_start_up(&warm, &run), "{name}");
        }
        let mut without_path = same.clone();
        without_path.remove(OsStr::new("PATH"));
        assert!(!same_start_up(&warm, &without_path));
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
