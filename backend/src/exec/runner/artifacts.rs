//! Artifacts: the fresh directory each run's tests get as
//! `TEST_ARTIFACTS_DIR`, and what of it is kept once the tests are done
//! (stored in the database, so that every instance can serve it).

use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use diesel::prelude::*;
use shared::Artifact;

use crate::db;
use crate::db::PgPool;

/// Bytes per stored chunk.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Files looked at per run at most; more are named in the log, not kept.
const MAX_FILES: usize = 1000;
/// Directory levels looked into at most.
const MAX_DEPTH: usize = 16;
/// Skipped files named one by one in the log at most.
const MAX_NOTES: usize = 20;

/// The run's artifacts directory, removed with what is left in it when
/// dropped.
pub struct ArtifactsDir {
    path: PathBuf,
}

impl ArtifactsDir {
    /// A fresh, empty directory `artifacts-<stem>` under `parent` (see
    /// `setup::RunSetup` for the stem): writable by a `RUN_AS_USER`, whom
    /// the parent lets through but not list.
    pub fn create(parent: &Path, stem: &str) -> io::Result<ArtifactsDir> {
        let path = parent.join(format!("artifacts-{stem}"));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
        Ok(ArtifactsDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ArtifactsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A regular file found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    /// `/`-separated, relative to the directory.
    relative: String,
    full: PathBuf,
    size: u64,
}

/// The regular files under `root`, by path, and notes on what was passed
/// over (links, names that are not UTF-8, too deep, too many). Links are
/// never followed: the service may read what the tests may not.
fn walk(root: &Path) -> (Vec<Found>, Vec<String>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, prefix, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            notes.push(format!("cannot read the directory {prefix:?}"));
            continue;
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                notes.push(format!(
                    "{:?} not kept: its name is not UTF-8",
                    entry.file_name()
                ));
                continue;
            };
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    notes.push(format!("{relative}/ not kept: nested too deeply"));
                } else {
                    pending.push((entry.path(), relative, depth + 1));
                }
            } else if meta.is_file() {
                found.push(Found {
                    relative,
                    full: entry.path(),
                    size: meta.len(),
                });
            } else {
                notes.push(format!("{relative} not kept: not a regular file"));
            }
        }
    }
    found.sort_by(|a, b| a.relative.cmp(&b.relative));
    if found.len() > MAX_FILES {
        notes.push(format!(
            "{} files not kept: at most {MAX_FILES} artifacts are kept per run",
            found.len() - MAX_FILES
        ));
        found.truncate(MAX_FILES);
    }
    (found, notes)
}

/// Which files fit under `max_bytes` together, in path order (a file too
/// large for what is left is skipped, a smaller one after it may still
/// fit); the others with why.
fn select(found: Vec<Found>, max_bytes: u64) -> (Vec<Found>, Vec<String>) {
    let mut total = 0u64;
    let mut kept = Vec::new();
    let mut notes = Vec::new();
    for file in found {
        if total.saturating_add(file.size) <= max_bytes {
            total += file.size;
            kept.push(file);
        } else {
            notes.push(format!(
                "{} ({} bytes) not kept: over ARTIFACTS_MAX_BYTES ({max_bytes} bytes a run, {} left)",
                file.relative,
                file.size,
                max_bytes - total
            ));
        }
    }
    (kept, notes)
}

/// Why artifacts could not be stored.
#[derive(Debug)]
enum StoreError {
    Db(diesel::result::Error),
    /// The run is no longer ours to write about.
    Lost,
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::Db(e)
    }
}

/// Stores what the tests left in `dir` (up to `max_bytes`) with run
/// `run_id`, if it is still running under `fence`, all or nothing. The
/// lines to add to the run's log: what was kept, and what was not and why.
pub fn keep(pool: &PgPool, run_id: i64, fence: i64, dir: &Path, max_bytes: u64) -> Vec<String> {
    let (found, mut notes) = walk(dir);
    if found.is_empty() && notes.is_empty() {
        return Vec::new();
    }
    let (kept, skipped) = select(found, max_bytes);
    notes.extend(skipped);
    let stored = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
        conn.transaction(|conn| store(conn, run_id, fence, &kept))
            .map_err(|e| match e {
                StoreError::Db(e) => e.to_string(),
                StoreError::Lost => "the run is no longer this instance's".into(),
            })
    });
    let mut lines = Vec::new();
    match stored {
        Ok((count, bytes, unread)) => {
            notes.extend(unread);
            lines.push(format!(
                "artifacts: {count} file(s) kept ({bytes} bytes), {} not kept",
                notes.len()
            ));
        }
        Err(why) => {
            tracing::warn!(error = %why, "artifacts not stored");
            lines.push(format!("artifacts: none kept: {why}"));
        }
    }
    let total_notes = notes.len();
    lines.extend(
        notes
            .into_iter()
            .take(MAX_NOTES)
            .map(|note| format!("artifacts: {note}")),
    );
    if total_notes > MAX_NOTES {
        lines.push(format!(
            "artifacts: ... and {} more not kept",
            total_notes - MAX_NOTES
        ));
    }
    lines
}

/// Writes the files, each in chunks read as they are stored; a file that
/// cannot be opened is left out with a note. How many files and bytes were
/// stored, and the notes.
fn store(
    conn: &mut PgConnection,
    run_id: i64,
    fence: i64,
    files: &[Found],
) -> Result<(usize, u64, Vec<String>), StoreError> {
    if !db::artifacts::lock_if_ours(conn, run_id, fence)? {
        return Err(StoreError::Lost);
    }
    let mut notes = Vec::new();
    let (mut count, mut bytes) = (0usize, 0u64);
    let mut buffer = vec![0u8; CHUNK_BYTES];
    for file in files {
        let mut reader = match std::fs::File::open(&file.full) {
            // Never more than was counted against the cap.
            Ok(opened) => opened.take(file.size),
            Err(e) => {
                notes.push(format!("{} not kept: cannot read it: {e}", file.relative));
                continue;
            }
        };
        let artifact = Artifact {
            content_type: shared::artifact::content_type_for(&file.relative).to_string(),
            path: file.relative.clone(),
            size: i64::try_from(file.size).unwrap_or(i64::MAX),
        };
        let id = db::artifacts::insert(conn, run_id, &artifact)?;
        let mut written = 0u64;
        let mut seq = 0i32;
        loop {
            let filled = fill(&mut reader, &mut buffer);
            if filled == 0 {
                break;
            }
            db::artifacts::insert_chunk(conn, id, seq, &buffer[..filled])?;
            written += filled as u64;
            seq += 1;
        }
        if written != file.size {
            // It shrank while being read: keep what there was.
            db::artifacts::set_size(conn, id, written as i64)?;
            notes.push(format!(
                "{} changed while being kept: {written} of {} bytes kept",
                file.relative, file.size
            ));
        }
        count += 1;
        bytes += written;
    }
    Ok((count, bytes, notes))
}

/// Reads until `buffer` is full or the file ends (a read error ends it
/// too); the bytes read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_by_path_and_links_are_not_followed() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("shots/deep")).unwrap();
        std::fs::write(root.path().join("b.txt"), "bb").unwrap();
        std::fs::write(root.path().join("shots/a.png"), "a").unwrap();
        std::fs::write(root.path().join("shots/deep/c.bin"), "ccc").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.path().join("passwd")).unwrap();
        let (found, notes) = walk(root.path());
        let paths: Vec<(&str, u64)> = found
            .iter()
            .map(|f| (f.relative.as_str(), f.size))
            .collect();
        assert_eq!(
            paths,
            [("b.txt", 2), ("shots/a.png", 1), ("shots/deep/c.bin", 3)]
        );
        assert_eq!(notes, ["passwd not kept: not a regular file"]);
    }

    #[test]
    fn the_cap_keeps_what_fits_in_path_order() {
        let file = |relative: &str, size| Found {
            relative: relative.into(),
            full: PathBuf::from(relative),
            size,
        };
        let (kept, notes) = select(
            vec![file("a", 60), file("b", 50), file("c", 40), file("d", 1)],
            100,
        );
        let kept: Vec<&str> = kept.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(kept, ["a", "c"]);
        assert_eq!(notes.len(), 2);
        assert!(notes[0].starts_with("b (50 bytes) not kept: over ARTIFACTS_MAX_BYTES"));
        assert!(notes[1].starts_with("d (1 bytes)"), "{}", notes[1]);
        let (kept, notes) = select(vec![file("exact", 100)], 100);
        assert_eq!((kept.len(), notes.len()), (1, 0), "exactly the cap fits");
    }

    #[test]
    fn the_directory_is_fresh_and_removed_after() {
        let parent = tempfile::tempdir().unwrap();
        let stale = parent.path().join("artifacts-7-1");
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("old.txt"), "old").unwrap();
        let dir = ArtifactsDir::create(parent.path(), "7-1").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
    }
}
