//! Storing an uploaded test file: checked (name, directory, Python syntax)
//! before anything under the tests root changes, then written atomically,
//! so a refused upload leaves the tests root exactly as it was.

use shared::validate;
use shared::{CatalogFile, FieldErrors};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::CatalogError;
use super::TestsRoot;

/// An upload as received: the file is already spooled outside the root.
pub struct Upload {
    pub directory: String,
    pub file_name: Option<String>,
    pub overwrite: bool,
    pub staged: Option<tempfile::NamedTempFile>,
}

/// Checks the Python source of `source` compiles; on a syntax error, says
/// where. `shown_as` is the name the message uses.
fn check_syntax(python: &str, source: &Path, shown_as: &str) -> Result<(), CatalogError> {
    const CHECK: &str = "import sys\n\
try:\n    compile(open(sys.argv[1], 'rb').read(), sys.argv[2], 'exec')\n\
except SyntaxError as e:\n    print(f'{type(e).__name__} at line {e.lineno}: {e.msg}'); sys.exit(3)\n\
except (ValueError, UnicodeError) as e:\n    print(f'cannot be read as Python source: {e}'); sys.exit(3)\n";
    let mut child = Command::new(python)
        .arg("-I")
        .arg("-c")
        .arg(CHECK)
        .arg(source)
        .arg(shown_as)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            CatalogError::internal(format!("cannot start {python} to check the source: {e}"))
        })?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(CatalogError::internal)? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CatalogError::internal(
                "the Python syntax check did not finish",
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = child.wait_with_output().map_err(CatalogError::internal)?;
    match status.code() {
        Some(0) => Ok(()),
        Some(3) => {
            let message = String::from_utf8_lossy(&output.stdout).trim().to_string();
            Err(CatalogError::field("file", message))
        }
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
