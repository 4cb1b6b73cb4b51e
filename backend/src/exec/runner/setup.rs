//! What a run needs before its test process starts: its paths checked
//! against the tests root, its artifacts directory, its files and its
//! reporter socket. Made as the run is claimed, or ahead of its claim for
//! the run a hand-off will most likely start (see [`RunSetup::for_next_on`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use shared::validate::TestPath;

use super::artifacts::ArtifactsDir;
use super::plugin::RuntimeDir;
use super::reporter_socket::ReporterSocket;
use super::RunnerContext;
use crate::db::runs;

/// Numbers the setups of this process: two setups of one run (one made
/// ahead of a claim that went elsewhere, and the claim's own) never share
/// a name, so dropping one cannot remove the other's files.
static SETUPS: AtomicU64 = AtomicU64::new(0);

/// A run's setup. Its files, directory and socket are removed when it is
/// dropped; the artifacts directory, taken out of it, lives on with the
/// finished run (see `FinishedRun`).
pub struct RunSetup {
    pub run_id: i64,
    pub paths: Vec<TestPath>,
    pub files: RunFiles,
    pub reporter: ReporterSocket,
    pub artifacts: ArtifactsDir,
}

impl RunSetup {
    /// The setup of run `run_id`, which names `raw_paths`; the reason it
    /// cannot run, if one of its paths is gone.
    pub fn create(
        ctx: &RunnerContext,
        run_id: i64,
        raw_paths: &[String],
    ) -> Result<RunSetup, String> {
        let paths = checked_paths(ctx, raw_paths)?;
        let stem = format!("{run_id}-{}", SETUPS.fetch_add(1, Ordering::Relaxed));
        let artifacts = ArtifactsDir::create(ctx.runtime.path(), &stem)
            .map_err(|e| format!("cannot create the artifacts directory: {e}"))?;
        let mut files = RunFiles::new(&ctx.runtime, &stem);
        files
            .write_selection(&ctx.runtime, &stem, &paths)
            .map_err(|e| format!("cannot write the test selection: {e}"))?;
        let reporter = ReporterSocket::bind(ctx.runtime.path(), &stem)
            .map_err(|e| format!("cannot open the reporter socket: {e}"))?;
        Ok(RunSetup {
            run_id,
            paths,
            files,
            reporter,
            artifacts,
        })
    }

    /// This setup, made ahead, for its run now claimed: its paths were
    /// checked a moment ago, and are checked again, as a setup made at
    /// the claim would have them checked.
    pub fn claimed(self, ctx: &RunnerContext) -> Result<RunSetup, String> {
        for path in &self.paths {
            still_there(ctx, path)?;
        }
        Ok(self)
    }

    /// Ahead of a finish that may hand `environment_id` on: the setup of
    /// the run waiting first there, the one the hand-off starts unless a
    /// cancel, a reservation or maintenance comes first. `None` when
    /// nothing waits, or when it cannot be made now (its own claim then
    /// says why).
    pub fn for_next_on(ctx: &RunnerContext, environment_id: i32) -> Option<RunSetup> {
        let mut conn = ctx.pool.get().ok()?;
        let (run_id, paths) = runs::first_queued_on(&mut conn, environment_id).ok()??;
        drop(conn);
        RunSetup::create(ctx, run_id, &paths).ok()
    }
}

/// The run's paths, after checking that each still exists.
fn checked_paths(ctx: &RunnerContext, raw_paths: &[String]) -> Result<Vec<TestPath>, String> {
    raw_paths
        .iter()
        .map(|raw| {
            let path = TestPath::parse(raw).map_err(|why| format!("test path {raw:?} {why}"))?;
            still_there(ctx, &path)?;
            Ok(path)
        })
        .collect()
}

fn still_there(ctx: &RunnerContext, path: &TestPath) -> Result<(), String> {
    ctx.tests_root
        .entry(path)
        .map(drop)
        .map_err(|why| format!("cannot run: {why} (was it deleted after the run was queued?)"))
}

/// Files of a run in the runtime directory, removed when dropped.
pub struct RunFiles {
    pub junit: PathBuf,
    pub selection: Option<PathBuf>,
}

impl RunFiles {
    fn new(runtime: &RuntimeDir, stem: &str) -> RunFiles {
        let junit = runtime.path().join(format!("run-{stem}.xml"));
        let _ = std::fs::remove_file(&junit);
        RunFiles {
            junit,
            selection: None,
        }
    }

    /// When the run names single tests: every path it names, one per
    /// line, for the plugin to select from. The command line then names
    /// only their files, so that any number of node ids fits.
    fn write_selection(
        &mut self,
        runtime: &RuntimeDir,
        stem: &str,
        paths: &[TestPath],
    ) -> std::io::Result<()> {
        if paths.iter().all(|p| p.node_suffix.is_none()) {
            return Ok(());
        }
        let file = runtime.path().join(format!("run-{stem}.selection"));
        let mut lines = String::new();
        for path in paths {
            lines.push_str(&path.as_arg());
            lines.push('\n');
        }
        std::fs::write(&file, lines)?;
        self.selection = Some(file);
        Ok(())
    }
}

impl Drop for RunFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.junit);
        if let Some(selection) = &self.selection {
            let _ = std::fs::remove_file(selection);
        }
    }
}
