//! The test catalog as a tree of directories, and the rules of selecting
//! from it: a selected directory takes everything below it.

use shared::{Catalog, CatalogFile};

use crate::sort::sort_by;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirNode {
    /// Relative to the tests root; empty for the root itself.
    pub path: String,
    pub name: String,
    pub dirs: Vec<DirNode>,
    pub files: Vec<CatalogFile>,
}

impl DirNode {
    /// Builds the tree of every directory the catalog names or holds files in.
    pub fn from_catalog(catalog: &Catalog) -> DirNode {
        let mut root = DirNode::default();
        for dir in &catalog.directories {
            root.dir_mut(dir);
        }
        for file in &catalog.files {
            root.dir_mut(&file.directory).files.push(file.clone());
        }
        root.sort();
        root
    }

    fn dir_mut(&mut self, path: &str) -> &mut DirNode {
        let mut node = self;
        let mut so_far = String::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(segment);
            let index = match node.dirs.iter().position(|d| d.name == segment) {
                Some(index) => index,
                None => {
                    node.dirs.push(DirNode {
                        path: so_far.clone(),
                        name: segment.to_string(),
                        ..DirNode::default()
                    });
                    node.dirs.len() - 1
                }
            };
            node = &mut node.dirs[index];
        }
        node
    }

    fn sort(&mut self) {
        sort_by(&mut self.dirs, |a, b| a.name.cmp(&b.name));
        sort_by(&mut self.files, |a, b| a.name.cmp(&b.name));
        for dir in &mut self.dirs {
            dir.sort();
        }
    }

    /// Whether anything in this directory matches the (lower-case) search.
    /// ASCII case only: Unicode case tables would cost the wasm kilobytes,
    /// and test paths are ASCII but for rare hand-copied files.
    pub fn matches(&self, needle: &str) -> bool {
        needle.is_empty()
            || self.path.to_ascii_lowercase().contains(needle)
            || self.files.iter().any(|f| file_matches(f, needle))
            || self.dirs.iter().any(|d| d.matches(needle))
    }

    pub fn file_count(&self) -> usize {
        self.files.len() + self.dirs.iter().map(DirNode::file_count).sum::<usize>()
    }
}

pub fn file_matches(file: &CatalogFile, needle: &str) -> bool {
    needle.is_empty() || file.path.to_ascii_lowercase().contains(needle)
}

/// `path` is inside directory `dir` (and is not `dir` itself).
pub fn is_below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() + 1 && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// The selected directory that already takes `path`, if any.
pub fn covering<'a>(selection: &'a [String], path: &str) -> Option<&'a str> {
    selection
        .iter()
        .find(|selected| is_below(path, selected))
        .map(String::as_str)
}

/// The selection after checking or unchecking `path`. Checking a
/// directory drops what it now covers.
pub fn toggle(selection: &[String], path: &str, checked: bool) -> Vec<String> {
    let mut next: Vec<String> = selection
        .iter()
        .filter(|selected| selected.as_str() != path && !(checked && is_below(selected, path)))
        .cloned()
        .collect();
    if checked && covering(&next, path).is_none() {
        next.push(path.to_string());
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn file(path: &str) -> CatalogFile {
        let (directory, name) = path.rsplit_once('/').unwrap_or(("", path));
        CatalogFile {
            path: path.into(),
            directory: directory.into(),
            name: name.into(),
            size: 1,
            modified_at: DateTime::default(),
        }
    }

    #[wasm_bindgen_test]
    fn the_tree_holds_every_directory_and_file() {
        let catalog = Catalog {
            directories: vec!["api".into(), "uploads/payments".into()],
            files: vec![
                file("test_root.py"),
                file("api/test_runs.py"),
                file("uploads/payments/test_pay.py"),
            ],
        };
        let root = DirNode::from_catalog(&catalog);
        let names: Vec<_> = root.dirs.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(names, vec!["api", "uploads"]);
        assert_eq!(root.dirs[1].dirs[0].path, "uploads/payments");
        assert_eq!(root.files.len(), 1);
        assert_eq!(root.file_count(), 3);
        assert!(root.dirs[1].matches("pay"));
        assert!(!root.dirs[0].matches("pay"));
    }

    #[wasm_bindgen_test]
    fn checking_a_directory_takes_all_of_it() {
        let selection = toggle(&[], "smoke/test_a.py", true);
        let selection = toggle(&selection, "api/test_b.py", true);
        let selection = toggle(&selection, "smoke", true);
        assert_eq!(
            selection,
            vec!["api/test_b.py".to_string(), "smoke".to_string()]
        );
        assert_eq!(covering(&selection, "smoke/test_a.py"), Some("smoke"));
        assert_eq!(covering(&selection, "smokey/test_a.py"), None);
        // Already covered: checking a file inside adds nothing.
        assert_eq!(toggle(&selection, "smoke/test_c.py", true), selection);
        assert_eq!(
            toggle(&selection, "smoke", false),
            vec!["api/test_b.py".to_string()]
        );
    }
}
