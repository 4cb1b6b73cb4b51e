//! The reporter plugin's home: a private directory made at start-up, apart
//! from the tests root, holding the plugin's source (embedded in the
//! binary) and the runs' event sockets and selection files.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The plugin's module name, as pytest's `-p` loads it.
pub const MODULE: &str = "te_reporter";
const SOURCE: &str = include_str!("reporter.py");

/// Removed with everything in it when the service stops.
#[derive(Debug)]
pub struct RuntimeDir {
    dir: tempfile::TempDir,
}

impl RuntimeDir {
    pub fn create() -> io::Result<RuntimeDir> {
        let dir = tempfile::Builder::new()
            .prefix("test-executor-")
            .tempdir()?;
        // Reachable (not listable) by a RUN_AS_USER, which must load the
        // plugin and reach its socket.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
        let plugin = dir.path().join("plugin");
        std::fs::create_dir(&plugin)?;
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755))?;
        let source = plugin.join(format!("{MODULE}.py"));
        std::fs::write(&source, SOURCE)?;
        std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o644))?;
        Ok(RuntimeDir { dir })
    }

    /// Goes on `PYTHONPATH`, so that `-p te_reporter` finds the plugin.
    pub fn plugin_dir(&self) -> PathBuf {
        self.dir.path().join("plugin")
    }

    /// Where runs put their sockets and selection files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_is_written_where_python_finds_it() {
        let runtime = RuntimeDir::create().unwrap();
        let source = std::fs::read_to_string(runtime.plugin_dir().join("te_reporter.py")).unwrap();
        assert!(source.contains("def pytest_configure"));
        let path = runtime.path().to_path_buf();
        drop(runtime);
        assert!(!path.exists(), "removed with the service");
    }
}
