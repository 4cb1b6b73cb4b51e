//! The tests root as a catalog of test files, read live from disk. Every
//! path from outside is resolved here, and must stay inside the root.

use chrono::{DateTime, Utc};
use shared::validate::{is_hidden_dir, is_test_file_name, TestPath};
use shared::{Catalog, CatalogFile};
use std::fs;
use std::path::{Component, Path, PathBuf};

use shared::FieldErrors;

pub mod markers;
pub mod upload;

/// Why the tests root refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Bad input, by field.
    #[error("invalid {0:?}")]
    Invalid(FieldErrors),
    /// Too much is going on at once; the client may retry shortly.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Internal(String),
}

impl CatalogError {
    pub fn internal(cause: impl std::fmt::Display) -> CatalogError {
        CatalogError::Internal(cause.to_string())
    }

    pub fn field(field: &str, why: impl Into<String>) -> CatalogError {
        CatalogError::Invalid(FieldErrors::from([(field.to_string(), why.into())]))
    }
}

#[derive(Debug, Clone)]
pub struct TestsRoot {
    root: PathBuf,
}

/// What a run's path names on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    File,
    Directory,
}

impl TestsRoot {
    /// The root, resolved once so that containment checks compare real paths.
    pub fn open(root: &Path) -> Result<TestsRoot, String> {
        let root = fs::canonicalize(root)
            .map_err(|e| format!("tests root {} is not usable: {e}", root.display()))?;
        if !root.is_dir() {
            return Err(format!("tests root {} is not a directory", root.display()));
        }
        Ok(TestsRoot { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Every test file and directory under the root, sorted by path.
    pub fn list(&self) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        self.walk(&self.root, "", 0, &mut catalog)?;
        catalog.directories.sort();
        catalog.files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(catalog)
    }

    fn walk(
        &self,
        dir: &Path,
        rel: &str,
        depth: usize,
        catalog: &mut Catalog,
    ) -> Result<(), CatalogError> {
        // Deep trees are not test suites; the bound also stops link loops.
        if depth > 32 {
            return Ok(());
        }
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            // A directory removed or unreadable while listing is just absent.
            Err(_) if depth > 0 => return Ok(()),
            Err(e) => {
                return Err(CatalogError::internal(format!(
                    "cannot read tests root: {e}"
                )))
            }
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            // Symlinks are not followed: they could lead out of the root.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let child_rel = join(rel, &name);
            if kind.is_dir() {
                if is_hidden_dir(&name) {
                    continue;
                }
                catalog.directories.push(child_rel.clone());
                self.walk(&entry.path(), &child_rel, depth + 1, catalog)?;
            } else if kind.is_file() && is_test_file_name(&name) {
                if let Ok(meta) = entry.metadata() {
                    catalog.files.push(file_entry(rel, &name, &meta));
                }
            }
        }
        Ok(())
    }

    /// Resolves a relative path inside the root to a real path, refusing
    /// anything (`..`, absolute, symlinks) that leads outside it.
    pub fn resolve(&self, rel: &str) -> Option<PathBuf> {
        let rel_path = Path::new(rel);
        if rel_path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let real = fs::canonicalize(self.root.join(rel_path)).ok()?;
        real.starts_with(&self.root).then_some(real)
    }

    /// What a run's path names: a test file or a directory of the catalog.
    pub fn entry(&self, path: &TestPath) -> Result<Entry, String> {
        let Some(real) = self.resolve(&path.location) else {
            return Err(format!(
                "{:?} does not exist in the tests root",
                path.location
            ));
        };
        let hidden = path.location.split('/').any(is_hidden_dir);
        if real.is_dir() && !hidden && path.node_suffix.is_none() {
            return Ok(Entry::Directory);
        }
        let name = real.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if real.is_file() && !hidden && is_test_file_name(name) {
            return Ok(Entry::File);
        }
        Err(format!(
            "{:?} is not a test file (test_*.py or *_test.py) or directory",
            path.location
        ))
    }

    /// The real path of a test file of the catalog, or 404.
    pub fn test_file(&self, rel: &str) -> Result<PathBuf, CatalogError> {
        let not_found = || CatalogError::NotFound(format!("no test file {rel:?}"));
        let path = TestPath::parse(rel).map_err(|_| not_found())?;
        if path.node_suffix.is_some() || self.entry(&path) != Ok(Entry::File) {
            return Err(not_found());
        }
        self.resolve(&path.location).ok_or_else(not_found)
    }

    /// The source of a test file.
    pub fn read(&self, rel: &str) -> Result<String, CatalogError> {
        let bytes = fs::read(self.test_file(rel)?)
            .map_err(|_| CatalogError::NotFound(format!("no test file {rel:?}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub fn file_entry(&self, rel: &str) -> Option<CatalogFile> {
        let real = self.resolve(rel)?;
        let meta = fs::metadata(real).ok()?;
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        Some(file_entry(dir, name, &meta))
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn file_entry(dir: &str, name: &str, meta: &fs::Metadata) -> CatalogFile {
    let modified_at: DateTime<Utc> = meta
        .modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now());
    CatalogFile {
        path: join(dir, name),
        directory: dir.to_string(),
        name: name.to_string(),
        size: meta.len(),
        modified_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(files: &[&str]) -> (tempfile::TempDir, TestsRoot) {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "def test_a():\n    pass\n").unwrap();
        }
        let root = TestsRoot::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn lists_test_files_and_directories_sorted() {
        let (_dir, root) = root_with(&[
            "smoke/test_b.py",
            "smoke/test_a.py",
            "api/x_test.py",
            "api/helpers.py",
            "__pycache__/test_c.py",
            ".hidden/test_d.py",
        ]);
        let catalog = root.list().unwrap();
        let paths: Vec<_> = catalog.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["api/x_test.py", "smoke/test_a.py", "smoke/test_b.py"]
        );
        assert_eq!(catalog.directories, ["api", "smoke"]);
        assert_eq!(catalog.files[1].directory, "smoke");
        assert_eq!(catalog.files[1].name, "test_a.py");
    }

    #[test]
    fn entries_must_be_test_files_or_directories_inside_the_root() {
        let (dir, root) = root_with(&["smoke/test_a.py", "smoke/helpers.py"]);
        let entry = |raw: &str| root.entry(&TestPath::parse(raw).unwrap());
        assert_eq!(entry("smoke"), Ok(Entry::Directory));
        assert_eq!(entry("smoke/test_a.py"), Ok(Entry::File));
        assert_eq!(entry("smoke/test_a.py::test_a"), Ok(Entry::File));
        assert!(entry("smoke/helpers.py").is_err());
        assert!(entry("smoke/test_missing.py").is_err());
        std::os::unix::fs::symlink("/etc", dir.path().join("escape")).unwrap();
        assert!(
            entry("escape").is_err(),
            "a symlink out of the root is refused"
        );
        assert!(root.resolve("escape/passwd").is_none());
    }
}
