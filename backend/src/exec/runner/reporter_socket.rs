//! The Unix socket a run's reporter plugin sends its events through: a
//! channel of its own, apart from the output, accepted only from a process
//! of the run's own process group.

use std::io::{self, BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use super::report::ReporterEvent;
use super::supervision::Event;
use crate::sys::procfs;

/// How often a waiting reader looks whether the run is over.
const CHECK_EVERY: Duration = Duration::from_millis(200);
/// Event lines longer than this (a runaway node id) are dropped.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// A bound socket, removed when dropped.
pub struct ReporterSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ReporterSocket {
    /// Binds `run-<stem>.sock` in `dir` (see `setup::RunSetup`).
    pub fn bind(dir: &Path, stem: &str) -> io::Result<ReporterSocket> {
        let path = dir.join(format!("run-{stem}.sock"));
        // Each setup's name is new in the process's own directory; should
        // anything be there all the same, it goes.
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        // Tests may run as another user (RUN_AS_USER); who may send is
        // checked per connection instead.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        listener.set_nonblocking(true)?;
        Ok(ReporterSocket { path, listener })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads events from the run's plugin into `events` on a thread of its
    /// own, until the plugin hangs up (then `Event::ReportEnd`) or `over`
    /// is set.
    pub fn serve(
        self,
        run_id: i64,
        pgid: i32,
        events: SyncSender<Event>,
        over: Arc<AtomicBool>,
    ) -> io::Result<()> {
        std::thread::Builder::new()
            .name(format!("run-{run_id}-report"))
            .spawn(move || self.accept_loop(pgid, &events, &over))
            .map(|_| ())
    }

    fn accept_loop(&self, pgid: i32, events: &SyncSender<Event>, over: &AtomicBool) {
        while !over.load(Ordering::SeqCst) {
            match self.listener.accept() {
                Ok((stream, _)) if from_the_run(&stream, pgid) => {
                    read_events(stream, events, over);
                    let _ = events.send(Event::ReportEnd);
                    return;
                }
                Ok(_) => tracing::warn!("refused a reporter connection from outside the run"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
                    let timeout = PollTimeout::try_from(CHECK_EVERY).unwrap_or(PollTimeout::MAX);
                    let _ = poll(&mut fds, timeout);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the reporter socket failed");
                    return;
                }
            }
        }
    }
}

impl Drop for ReporterSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether the connecting process belongs to the run's process group.
fn from_the_run(stream: &UnixStream, pgid: i32) -> bool {
    getsockopt(stream, PeerCredentials)
        .ok()
        .and_then(|peer| procfs::stat(peer.pid()))
        .is_some_and(|process| process.pgrp == pgid)
}

/// Hands each event line on until end of stream, `over`, or the loop is
/// gone. A read that waits looks at `over` now and then: a process that
/// escaped the run may hold the connection open.
fn read_events(stream: UnixStream, events: &SyncSender<Event>, over: &AtomicBool) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(CHECK_EVERY)).is_err()
    {
        return;
    }
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    // Inside a line too long to keep, until its end.
    let mut skipping = false;
    while !over.load(Ordering::SeqCst) {
        let buffer = match reader.fill_buf() {
            Ok([]) => return,
            Ok(buffer) => buffer,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        let (chunk, ends_line) = match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => (&buffer[..=end], true),
            None => (buffer, false),
        };
        if !skipping {
            line.extend_from_slice(chunk);
        }
        let used = chunk.len();
        reader.consume(used);
        if ends_line {
            if !skipping {
                if let Some(event) = ReporterEvent::parse(&line) {
                    if events.send(Event::Report(event)).is_err() {
                        return;
                    }
                }
            }
            line.clear();
            skipping = false;
        } else if line.len() > MAX_LINE_BYTES {
            line.clear();
            skipping = true;
        }
    }
}
