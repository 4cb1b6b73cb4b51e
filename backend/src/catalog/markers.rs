//! The markers pytest knows for the tests root (`pytest --markers`: its
//! own, its plugins' and those registered in the root's configuration),
//! for the SPA's marker picker. Asked once and cached until the catalog
//! or a configuration file changes.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, UNIX_EPOCH};

use shared::Marker;

use super::{CatalogError, TestsRoot};

/// How long pytest may take to list them.
const LIST_DEADLINE: Duration = Duration::from_secs(30);
/// The most output read from it.
const MAX_OUTPUT_BYTES: u64 = 1024 * 1024;
/// Files whose change may change the markers, besides the tests.
const CONFIG_FILES: [&str; 5] = [
    "pytest.ini",
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "conftest.py",
];

/// The last list, with the fingerprint of the files it was read from.
#[derive(Debug, Default)]
pub struct MarkerCache {
    last: Mutex<Option<(u64, Vec<Marker>)>>,
}

impl MarkerCache {
    /// The markers, from the cache while nothing they come from changed.
    /// Concurrent callers on a stale cache each ask pytest; the last
    /// answer wins, and all are the same.
    pub fn markers(&self, root: &TestsRoot, python: &str) -> Result<Vec<Marker>, CatalogError> {
        let fingerprint = fingerprint(root)?;
        if let Ok(last) = self.last.lock() {
            if let Some((known, markers)) = last.as_ref() {
                if *known == fingerprint {
                    return Ok(markers.clone());
                }
            }
        }
        let markers = list(root.path(), python)?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((fingerprint, markers.clone()));
        }
        Ok(markers)
    }
}

/// A hash of every test file and directory of the catalog with its size
/// and time, and of the configuration files pytest reads there.
fn fingerprint(root: &TestsRoot) -> Result<u64, CatalogError> {
    let catalog = root.list()?;
    let mut text = String::new();
    for file in &catalog.files {
        text.push_str(&format!(
            "{}\0{}\0{}\n",
            file.path, file.size, file.modified_at
        ));
    }
    let directories = std::iter::once(String::new()).chain(catalog.directories.iter().cloned());
    for directory in directories {
        for name in CONFIG_FILES {
            let path = root.path().join(&directory).join(name);
            if let Ok(meta) = std::fs::metadata(&path) {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                text.push_str(&format!("{}\0{}\0{modified}\n", path.display(), meta.len()));
            }
        }
    }
    Ok(crate::hash::fnv1a(text.bytes()))
}

/// Asks pytest, in the tests root, without its cache.
fn list(root: &Path, python: &str) -> Result<Vec<Marker>, CatalogError> {
    let mut child = Command::new(python)
        .args(["-m", "pytest", "--markers", "-p", "no:cacheprovider"])
        .current_dir(root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("DATABASE_URL")
        .env_remove("PYTEST_ADDOPTS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            CatalogError::internal(format!("cannot start {python} -m pytest --markers: {e}"))
        })?;
    // Read as it comes, so that a chatty conftest cannot fill the pipe.
    let reader = child.stdout.take().map(|stdout| {
        std::thread::spawn(move || {
            let mut output = Vec::new();
            let _ = stdout.take(MAX_OUTPUT_BYTES).read_to_end(&mut output);
            output
        })
    });
    let deadline = Instant::now() + LIST_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(CatalogError::internal)? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CatalogError::internal(format!(
                "pytest --markers took more than {} s",
                LIST_DEADLINE.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = reader
        .and_then(|thread| thread.join().ok())
        .unwrap_or_default();
    if !status.success() {
        return Err(CatalogError::internal(format!(
            "pytest --markers failed ({status}) in the tests root"
        )));
    }
    Ok(shared::selection::parse_markers(&String::from_utf8_lossy(
        &output,
    )))
}
