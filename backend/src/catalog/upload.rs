//! Storing an uploaded test file: checked (name, directory, Python syntax)
//! before anything under the tests root changes, then written atomically,
//! so a refused upload leaves the tests root exactly as it was.

use shared::validate;
use shared::{CatalogFile, FieldErrors};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::resource::{setrlimit, Resource};

use super::CatalogError;
use super::TestsRoot;

/// An upload as received: the file is already spooled outside the root.
pub struct Upload {
    pub directory: String,
    pub file_name: Option<String>,
    pub overwrite: bool,
    pub staged: Option<tempfile::NamedTempFile>,
}

/// The syntax check compiles the source in a Python interpreter of its
/// own: compile() of a 1 MiB file takes seconds of CPU and several hundred
/// MB, so the checks are bounded in number, time and memory.
const CHECK_DEADLINE: Duration = Duration::from_secs(20);
/// How long an upload waits for a free check before it is told to retry.
const CHECK_QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Address space of a check: the interpreter, plus what compile() needs for
/// the file (measured: up to about 650 bytes per byte of source).
const CHECK_BASE_MEMORY: u64 = 256 * 1024 * 1024;
const CHECK_MEMORY_PER_BYTE: u64 = 1024;

/// The checks running now, at most one per CPU (at least two): compile()
/// is CPU-bound, so more at once would only make each slower.
struct CheckSlots {
    used: Mutex<usize>,
    freed: Condvar,
}

static CHECK_SLOTS: CheckSlots = CheckSlots {
    used: Mutex::new(0),
    freed: Condvar::new(),
};

/// A running check's place; given back when dropped.
struct CheckSlot;

impl CheckSlots {
    fn capacity() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
    }

    /// Waits up to `wait` for a free place.
    fn acquire(&self, wait: Duration) -> Option<CheckSlot> {
        let deadline = Instant::now() + wait;
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used >= Self::capacity() {
            let left = deadline.checked_duration_since(Instant::now())?;
            used = self
                .freed
                .wait_timeout(used, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *used += 1;
        Some(CheckSlot)
    }
}

impl Drop for CheckSlot {
    fn drop(&mut self) {
        let mut used = CHECK_SLOTS
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *used = used.saturating_sub(1);
        CHECK_SLOTS.freed.notify_one();
    }
}

/// Checks the Python source of `source` compiles; on a syntax error, says
/// where. `shown_as` is the name the message uses. A source too deep or
/// too large for the compiler within the check's limits is bad input, like
/// a syntax error.
fn check_syntax(python: &str, source: &Path, shown_as: &str) -> Result<(), CatalogError> {
    const CHECK: &str = "import sys\n\
try:\n    compile(open(sys.argv[1], 'rb').read(), sys.argv[2], 'exec')\n\
except SyntaxError as e:\n    print(f'{type(e).__name__} at line {e.lineno}: {e.msg}'); sys.exit(3)\n\
except (ValueError, UnicodeError) as e:\n    print(f'cannot be read as Python source: {e}'); sys.exit(3)\n\
except (RecursionError, MemoryError, OverflowError) as e:\n    \
print(f'is nested too deeply or too large to compile ({type(e).__name__})'); sys.exit(3)\n";
    let size = fs::metadata(source).map_or(0, |m| m.len());
    let memory = CHECK_BASE_MEMORY.saturating_add(size.saturating_mul(CHECK_MEMORY_PER_BYTE));
    let cpu_secs = CHECK_DEADLINE.as_secs();
    let Some(_slot) = CHECK_SLOTS.acquire(CHECK_QUEUE_WAIT) else {
        return Err(CatalogError::Busy(
            "too many uploads are being checked at once; try again in a few seconds".into(),
        ));
    };
    let mut command = Command::new(python);
    command
        .arg("-I")
        .arg("-c")
        .arg(CHECK)
        .arg(source)
        .arg(shown_as)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure only makes setrlimit
    // system calls, which allocate nothing and take no lock.
    unsafe {
        command.pre_exec(move || {
            setrlimit(Resource::RLIMIT_AS, memory, memory)?;
            setrlimit(Resource::RLIMIT_CPU, cpu_secs, cpu_secs + 1)?;
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| {
        CatalogError::internal(format!("cannot start {python} to check the source: {e}"))
    })?;
    let deadline = Instant::now() + CHECK_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(CatalogError::internal)? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CatalogError::field(
                "file",
                format!(
                    "took more than {} s to compile; split it into smaller files",
                    CHECK_DEADLINE.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = child.wait_with_output().map_err(CatalogError::internal)?;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(3), _) => {
            let message = String::from_utf8_lossy(&output.stdout).trim().to_string();
            Err(CatalogError::field("file", message))
        }
        // The CPU limit (SIGXCPU), or the compiler overflowing its stack
        // on a pathological source: the source's doing either way.
        (None, Some(signal)) => Err(CatalogError::field(
            "file",
            format!(
                "could not be compiled within the limits of the syntax check \
                 ({} s of CPU, {} MiB; signal {signal})",
                cpu_secs,
                memory / (1024 * 1024)
            ),
        )),
        _ => Err(CatalogError::internal(format!(
            "the Python syntax check failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

/// Walks the directory's segments from the root: each existing one must
/// be a real directory (not a symlink); returns the path and the segments
/// that do not exist yet.
fn plan_directory(root: &Path, directory: &str) -> Result<(PathBuf, Vec<PathBuf>), CatalogError> {
    let mut current = root.to_path_buf();
    let mut missing = Vec::new();
    for segment in directory.split('/').filter(|s| !s.is_empty()) {
        current.push(segment);
        if !missing.is_empty() {
            missing.push(current.clone());
            continue;
        }
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(CatalogError::field(
                    "directory",
                    format!("{segment:?} is a symbolic link; uploads only go to real directories"),
                ))
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(CatalogError::field(
                    "directory",
                    format!("{segment:?} is not a directory"),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(current.clone()),
            Err(e) => return Err(CatalogError::internal(e)),
        }
    }
    Ok((current, missing))
}

/// Removes the directories this upload created, deepest first, if empty.
fn remove_created(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = fs::remove_dir(dir);
    }
}

/// Validates and stores an upload; answers the new catalog entry.
pub fn store(root: &TestsRoot, python: &str, upload: Upload) -> Result<CatalogFile, CatalogError> {
    let mut fields = FieldErrors::new();
    let name = match upload.file_name.as_deref() {
        None => {
            fields.insert(
                "file".into(),
                "is required: send the test file as a part named file".into(),
            );
            None
        }
        Some(raw) => match validate::upload_file_name(raw) {
            Ok(name) => Some(name),
            Err(why) => {
                fields.insert("file".into(), format!("name {why}"));
                None
            }
        },
    };
    let directory = match validate::upload_directory(&upload.directory) {
        Ok(directory) => Some(directory),
        Err(why) => {
            fields.insert("directory".into(), why);
            None
        }
    };
    let (Some(name), Some(directory), Some(staged)) = (name, directory, upload.staged) else {
        if fields.is_empty() {
            fields.insert("file".into(), "is required".into());
        }
        return Err(CatalogError::Invalid(fields));
    };
    let rel_path = if directory.is_empty() {
        name.clone()
    } else {
        format!("{directory}/{name}")
    };
    check_syntax(python, staged.path(), &rel_path)?;

    let (target_dir, missing) = plan_directory(root.path(), &directory)?;
    let target = target_dir.join(&name);
    if !upload.overwrite && fs::symlink_metadata(&target).is_ok() {
        return Err(CatalogError::Conflict(format!(
            "{rel_path} already exists; send overwrite=true to replace it"
        )));
    }
    if fs::symlink_metadata(&target).is_ok_and(|m| !m.is_file()) {
        return Err(CatalogError::Conflict(format!(
            "{rel_path} exists and is not a file"
        )));
    }

    let mut created = Vec::new();
    for dir in &missing {
        match fs::create_dir(dir) {
            Ok(()) => created.push(dir.clone()),
            // Another upload made it meanwhile: fine if it is a directory.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => {
                remove_created(&created);
                return Err(CatalogError::internal(format!(
                    "cannot create {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    let written = write_atomically(staged.path(), &target_dir, &target, upload.overwrite);
    if let Err(e) = written {
        remove_created(&created);
        return Err(match e.kind() {
            io::ErrorKind::AlreadyExists => CatalogError::Conflict(format!(
                "{rel_path} already exists; send overwrite=true to replace it"
            )),
            _ => CatalogError::internal(format!("cannot write {rel_path}: {e}")),
        });
    }
    root.file_entry(&rel_path).ok_or_else(|| {
        CatalogError::internal(format!("{rel_path} vanished right after the upload"))
    })
}

/// Copies the staged file next to its target, syncs it, and puts it in
/// place in one step: a hard link when it must not replace anything (so
/// of two racing uploads exactly one wins), a rename otherwise.
fn write_atomically(staged: &Path, dir: &Path, target: &Path, overwrite: bool) -> io::Result<()> {
    let mut temp = tempfile::Builder::new()
        .prefix(".upload-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    io::copy(&mut fs::File::open(staged)?, temp.as_file_mut())?;
    // Temporary files are private (0600); a test file must be readable by
    // whoever runs the tests (RUN_AS_USER), like the files next to it.
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))?;
    temp.as_file_mut().flush()?;
    temp.as_file().sync_all()?;
    if overwrite {
        temp.persist(target).map_err(|e| e.error)?;
    } else {
        fs::hard_link(temp.path(), target)?;
        // The temporary name is removed when `temp` drops.
    }
    fs::File::open(dir)?.sync_all()
}

/// Deletes a test file of the catalog.
pub fn delete(root: &TestsRoot, rel: &str) -> Result<(), CatalogError> {
    // Checks the name resolves to a test file inside the root; the name
    // itself is removed (a link, not what it points to).
    root.test_file(rel)?;
    let location = rel.trim_end_matches('/');
    fs::remove_file(root.path().join(location)).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => CatalogError::NotFound(format!("no test file {rel:?}")),
        _ => CatalogError::internal(format!("cannot delete {rel}: {e}")),
    })
}
