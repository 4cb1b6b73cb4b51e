//! What the recent past says: the pass rate and median duration of the
//! latest runs, and the last results of a test, oldest first.

use shared::stats::median;
use shared::{CaseResult, HistoryItem, Run, RunStatus};

/// How many of the latest runs the runs page's chart looks at.
pub const TREND_RUNS: usize = 50;

/// How many past results the strip next to a failed test shows.
pub const STRIP_RESULTS: usize = 20;

/// One finished run of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendBar {
    pub run_id: i64,
    pub status: RunStatus,
    pub duration_ms: Option<i64>,
}

/// The finished runs among the latest ones, and what they add up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTrend {
    /// Oldest first, as a chart reads left to right.
    pub bars: Vec<TrendBar>,
    /// Runs that succeeded, out of `judged`: those that came to a verdict
    /// (success, failed or error). A cancelled run says nothing about the
    /// tests, so it counts in neither.
    pub passed: usize,
    pub judged: usize,
    /// The median duration of the judged runs that have one: the lower
    /// median, as the insights page's figures from the server.
    pub median_ms: Option<i64>,
}

impl RunTrend {
    /// From runs newest first, as `GET /api/runs` lists them: the finished
    /// ones among the first [`TREND_RUNS`].
    pub fn from_runs(runs: &[Run]) -> RunTrend {
        let mut bars: Vec<TrendBar> = runs
            .iter()
            .take(TREND_RUNS)
            .filter(|run| run.status.is_finished())
            .map(|run| TrendBar {
                run_id: run.id,
                status: run.status,
                duration_ms: run.duration_ms,
            })
            .collect();
        bars.reverse();
        let judged: Vec<&TrendBar> = bars
            .iter()
            .filter(|bar| bar.status != RunStatus::Cancelled)
            .collect();
        let passed = judged
            .iter()
            .filter(|bar| bar.status == RunStatus::Success)
            .count();
        let mut durations: Vec<i64> = judged.iter().filter_map(|bar| bar.duration_ms).collect();
        RunTrend {
            passed,
            judged: judged.len(),
            median_ms: median(&mut durations),
            bars,
        }
    }

    /// The pass rate in whole percent, rounded; `None` without a verdict.
    pub fn pass_percent(&self) -> Option<usize> {
        (self.judged > 0).then(|| (self.passed * 100 + self.judged / 2) / self.judged)
    }

    /// The longest duration of the chart, the top of its scale.
    pub fn longest_ms(&self) -> i64 {
        self.bars
            .iter()
            .filter_map(|bar| bar.duration_ms)
            .max()
            .unwrap_or(0)
    }
}

/// The test file of a node id: `dir/test_x.py::TestK::test_b[1]` is in
/// `dir/test_x.py`.
pub fn file_of(nodeid: &str) -> &str {
    nodeid.split("::").next().unwrap_or(nodeid)
}

/// The files of the failed and errored cases, each once, in the order of
/// the cases: one history request each.
pub fn failed_files(cases: &[CaseResult]) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for case in cases.iter().filter(|case| case.outcome.is_failure()) {
        let file = file_of(&case.nodeid);
        if !files.iter().any(|known| known == file) {
            files.push(file.to_string());
        }
    }
    files
}

/// The last [`STRIP_RESULTS`] results of test `nodeid`, oldest first, out of
/// history newest first (of any tests, as a file's history mixes them).
pub fn strip(history: &[HistoryItem], nodeid: &str) -> Vec<HistoryItem> {
    let mut items: Vec<HistoryItem> = history
        .iter()
        .filter(|item| item.nodeid == nodeid)
        .take(STRIP_RESULTS)
        .cloned()
        .collect();
    items.reverse();
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{CaseOutcome, RunSummary};
    use wasm_bindgen_test::wasm_bindgen_test;

    fn run(id: i64, status: RunStatus, duration_ms: Option<i64>) -> Run {
        Run {
            id,
            username: "alice".into(),
            environment_id: Some(1),
            environment_label: None,
            paths: vec!["smoke".into()],
            status,
            status_reason: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            started_at: None,
            finished_at: None,
            duration_ms,
            exit_code: None,
            queue_position: None,
            summary: RunSummary::default(),
            rerun_of: None,
            hold_on_failure_minutes: None,
            estimated_start_at: None,
            run_group_id: None,
            shard: None,
            schedule_id: None,
            scheduled_for: None,
            schedule_note: None,
            keyword: None,
            markers: None,
            pinned: false,
            details_removed_at: None,
        }
    }

    fn result(run_id: i64, nodeid: &str, outcome: CaseOutcome) -> HistoryItem {
        HistoryItem {
            run_id,
            environment_id: 1,
            nodeid: nodeid.into(),
            outcome,
            duration_ms: 5,
            finished_at: None,
        }
    }

    #[wasm_bindgen_test]
    fn the_trend_counts_finished_runs_oldest_first() {
        // Newest first, as the API lists them.
        let runs = [
            run(6, RunStatus::Running, None),
            run(5, RunStatus::Success, Some(400)),
            run(4, RunStatus::Cancelled, Some(10)),
            run(3, RunStatus::Failed, Some(100)),
            run(2, RunStatus::Queued, None),
            run(1, RunStatus::Success, Some(200)),
        ];
        let trend = RunTrend::from_runs(&runs);
        let ids: Vec<i64> = trend.bars.iter().map(|bar| bar.run_id).collect();
        assert_eq!(ids, vec![1, 3, 4, 5]);
        // The cancelled run is drawn but judged neither way.
        assert_eq!((trend.passed, trend.judged), (2, 3));
        assert_eq!(trend.pass_percent(), Some(67));
        assert_eq!(trend.median_ms, Some(200));
        assert_eq!(trend.longest_ms(), 400);
    }

    #[wasm_bindgen_test]
    fn the_trend_looks_at_the_latest_fifty_runs_only() {
        let runs: Vec<Run> = (1..=80)
            .rev()
            .map(|id| {
                let status = if id > 40 {
                    RunStatus::Success
                } else {
                    RunStatus::Failed
                };
                run(id, status, Some(id))
            })
            .collect();
        let trend = RunTrend::from_runs(&runs);
        assert_eq!(trend.bars.len(), TREND_RUNS);
        assert_eq!(trend.bars.first().map(|bar| bar.run_id), Some(31));
        assert_eq!(trend.bars.last().map(|bar| bar.run_id), Some(80));
        assert_eq!(trend.pass_percent(), Some(80));
        // 31..=80: the middle two are 55 and 56.
        assert_eq!(trend.median_ms, Some(55));
    }

    #[wasm_bindgen_test]
    fn no_finished_run_means_no_figures() {
        let trend = RunTrend::from_runs(&[run(1, RunStatus::Running, None)]);
        assert!(trend.bars.is_empty());
        assert_eq!(trend.pass_percent(), None);
        assert_eq!(trend.median_ms, None);
        let cancelled = RunTrend::from_runs(&[run(2, RunStatus::Cancelled, Some(5))]);
        assert_eq!((cancelled.bars.len(), cancelled.pass_percent()), (1, None));
    }

    #[wasm_bindgen_test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median::<i64>(&mut []), None);
        assert_eq!(median(&mut [7]), Some(7));
        assert_eq!(median(&mut [9, 1, 5]), Some(5));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
        // The lower of the two middle values, a duration actually measured.
        assert_eq!(median(&mut [10, 20]), Some(10));
    }

    #[wasm_bindgen_test]
    fn node_ids_name_their_file() {
        assert_eq!(
            file_of("smoke/test_x.py::TestK::test_b[1]"),
            "smoke/test_x.py"
        );
        assert_eq!(file_of("smoke/test_x.py"), "smoke/test_x.py");
        let case = |nodeid: &str, outcome| CaseResult {
            nodeid: nodeid.into(),
            outcome,
            duration_ms: 1,
            message: None,
            attachments: Vec::new(),
        };
        let cases = [
            case("b/test_y.py::test_1", CaseOutcome::Failed),
            case("a/test_x.py::test_1", CaseOutcome::Error),
            case("b/test_y.py::test_2", CaseOutcome::Failed),
            case("c/test_z.py::test_1", CaseOutcome::Passed),
            case("d/test_w.py::test_1", CaseOutcome::Skipped),
        ];
        assert_eq!(failed_files(&cases), vec!["b/test_y.py", "a/test_x.py"]);
    }

    #[wasm_bindgen_test]
    fn a_strip_reads_oldest_to_newest_and_keeps_the_last_results() {
        // A file's history, newest first, two tests mixed.
        let mut history = Vec::new();
        for run_id in (1..=30).rev() {
            let outcome = if run_id % 2 == 0 {
                CaseOutcome::Passed
            } else {
                CaseOutcome::Failed
            };
            history.push(result(run_id, "t.py::test_flaky", outcome));
            history.push(result(run_id, "t.py::test_other", CaseOutcome::Passed));
        }
        let strip = strip(&history, "t.py::test_flaky");
        let ids: Vec<i64> = strip.iter().map(|item| item.run_id).collect();
        assert_eq!(ids, (11..=30).collect::<Vec<_>>());
        assert_eq!(strip[0].outcome, CaseOutcome::Failed);
        assert_eq!(strip[19].outcome, CaseOutcome::Passed);
        assert!(super::strip(&history, "t.py::test_missing").is_empty());
    }
}
