//! Reading pytest's terminal output: bounded lines, and the progress and
//! final counts it announces.

use shared::ansi::strip_ansi;
use shared::RunSummary;

/// Longer lines are cut into pieces of this size, so a test printing a
/// huge line without a newline cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Splits a byte stream into lines (each keeping its `\n`), never holding
/// more than [`MAX_LINE_BYTES`] of an unfinished line.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(Vec<u8>)) {
        while !bytes.is_empty() {
            let room = MAX_LINE_BYTES - self.partial.len();
            let window = &bytes[..bytes.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    self.partial.extend_from_slice(&window[..=newline]);
                    emit(std::mem::take(&mut self.partial));
                    bytes = &bytes[newline + 1..];
                }
                None => {
                    self.partial.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                    if self.partial.len() >= MAX_LINE_BYTES {
                        emit(std::mem::take(&mut self.partial));
                    }
                }
            }
        }
    }

    /// What is left at the end of the stream.
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then_some(self.partial)
    }
}

/// Log text from raw output: invalid UTF-8 and NUL (which Postgres text
/// cannot hold) become U+FFFD.
pub fn to_log_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}")
}

const OUTCOME_WORDS: [&str; 6] = ["PASSED", "FAILED", "SKIPPED", "XFAIL", "XPASS", "ERROR"];

/// Live counts from pytest's verbose output, and the counts of its final
/// summary line once it appears.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    pub live: RunSummary,
    pub final_counts: Option<RunSummary>,
}

impl Progress {
    pub fn observe(&mut self, raw_line: &str) {
        let line = strip_ansi(raw_line);
        let line = line.trim_end();
        if let Some(total) = collected_count(line) {
            self.live.total = Some(total);
            for count in [
                &mut self.live.passed,
                &mut self.live.failed,
                &mut self.live.skipped,
                &mut self.live.errors,
                &mut self.live.xfailed,
                &mut self.live.xpassed,
            ] {
                count.get_or_insert(0);
            }
        } else if let Some(outcome) = verbose_outcome(line) {
            let slot = match outcome {
                "PASSED" => &mut self.live.passed,
                "FAILED" => &mut self.live.failed,
                "SKIPPED" => &mut self.live.skipped,
                "XFAIL" => &mut self.live.xfailed,
                "XPASS" => &mut self.live.xpassed,
                _ => &mut self.live.errors,
            };
            *slot = Some(slot.unwrap_or(0) + 1);
        } else if let Some(counts) = summary_line_counts(line) {
            self.final_counts = Some(counts);
        }
    }
}

/// `collected 12 items`, `collected 1 item / 1 error`, `collected 0 items`,
/// also after pytest's `collecting ... ` on the same line.
fn collected_count(line: &str) -> Option<i32> {
    let line = line.strip_prefix("collecting ... ").unwrap_or(line);
    let rest = line.strip_prefix("collected ")?;
    let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let rest = rest[number.len()..].trim_start();
    if !rest.starts_with("item") {
        return None;
    }
    number.parse().ok()
}

/// `smoke/test_x.py::test_a PASSED   [ 50%]` → `PASSED`.
fn verbose_outcome(line: &str) -> Option<&'static str> {
    if !line.ends_with("%]") {
        return None;
    }
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if !first.contains("::") && !first.ends_with(".py") {
        return None;
    }
    words.find_map(|word| OUTCOME_WORDS.iter().copied().find(|o| *o == word))
}

/// Pytest's closing line, `==== 1 failed, 2 passed, 1 skipped in 0.12s ====`.
pub fn summary_line_counts(line: &str) -> Option<RunSummary> {
    let inner = line.trim().trim_matches('=').trim();
    if !line.trim_start().starts_with('=') || !line.trim_end().ends_with('=') {
        return None;
    }
    let (counts, timing) = inner.rsplit_once(" in ")?;
    if !timing
        .trim_start()
        .starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let mut summary = RunSummary {
        total: None,
        passed: Some(0),
        failed: Some(0),
        skipped: Some(0),
        errors: Some(0),
        xfailed: Some(0),
        xpassed: Some(0),
    };
    let mut understood = false;
    for part in counts.split(", ") {
        if part.trim() == "no tests ran" {
            understood = true;
            continue;
        }
        let mut words = part.split_whitespace();
        let (Some(number), Some(word)) = (words.next(), words.next()) else {
            return None;
        };
        let Ok(number) = number.parse::<i32>() else {
            return None;
        };
        let slot = match word {
            "passed" => &mut summary.passed,
            "failed" => &mut summary.failed,
            "skipped" => &mut summary.skipped,
            "xfailed" => &mut summary.xfailed,
            "xpassed" => &mut summary.xpassed,
            "error" | "errors" => &mut summary.errors,
            // warnings, deselected, rerun: not outcomes of a test.
            _ => {
                understood = true;
                continue;
            }
        };
        *slot = Some(number);
        understood = true;
    }
    if !understood {
        return None;
    }
    summary.total = Some(summary.done());
    Some(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_keeps_lines_and_cuts_long_ones() {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        splitter.push(b"one\ntw", |l| lines.push(l));
        splitter.push(b"o\nthree", |l| lines.push(l));
        assert_eq!(lines, vec![b"one\n".to_vec(), b"two\n".to_vec()]);
        assert_eq!(splitter.finish(), Some(b"three".to_vec()));

        let mut splitter = LineSplitter::default();
        let mut sizes = Vec::new();
        let huge = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        splitter.push(&huge, |l| sizes.push(l.len()));
        assert_eq!(sizes, vec![MAX_LINE_BYTES, MAX_LINE_BYTES]);
        assert_eq!(splitter.finish().map(|l| l.len()), Some(10));
    }

    #[test]
    fn log_text_has_no_nul_and_survives_bad_utf8() {
        assert_eq!(to_log_text(b"a\0b\xffc"), "a\u{FFFD}b\u{FFFD}c");
    }

    #[test]
    fn progress_follows_verbose_lines() {
        let mut progress = Progress::default();
        for line in [
            "============================= test session starts ==============================",
            "collected 4 items",
            "",
            "smoke/test_x.py::test_a \u{1b}[32mPASSED\u{1b}[0m                    [ 25%]",
            "smoke/test_x.py::test_b[1] FAILED                 [ 50%]",
            "smoke/test_x.py::test_c SKIPPED (no reason)      [ 75%]",
            "smoke/test_x.py::test_d XFAIL (known)            [100%]",
            "PASSED smoke/test_x.py::test_a",
        ] {
            progress.observe(line);
        }
        assert_eq!(progress.live.total, Some(4));
        assert_eq!(progress.live.passed, Some(1));
        assert_eq!(progress.live.failed, Some(1));
        assert_eq!(progress.live.skipped, Some(1));
        assert_eq!(progress.live.xfailed, Some(1));
        assert_eq!(progress.live.errors, Some(0));
        assert!(progress.final_counts.is_none());
    }

    #[test]
    fn collected_lines_with_errors_still_count() {
        assert_eq!(collected_count("collected 3 items / 1 error"), Some(3));
        assert_eq!(collected_count("collected 1 item"), Some(1));
        assert_eq!(collected_count("collected 0 items"), Some(0));
        assert_eq!(collected_count("collected things"), None);
        assert_eq!(collected_count("collecting ... collected 9 items"), Some(9));
        let mut progress = Progress::default();
        progress.observe("\u{1b}[1mcollecting ... \u{1b}[0mcollected 9 items\n");
        assert_eq!(progress.live.total, Some(9));
    }

    #[test]
    fn summary_line_is_read_word_by_word() {
        let summary = summary_line_counts(
            "===== 1 failed, 2 passed, 1 skipped, 1 xfailed, 1 xpassed, 2 errors, 3 warnings in 0.52s =====",
        );
        let summary = summary.unwrap();
        assert_eq!(
            (
                summary.passed,
                summary.failed,
                summary.skipped,
                summary.errors
            ),
            (Some(2), Some(1), Some(1), Some(2))
        );
        assert_eq!((summary.xfailed, summary.xpassed), (Some(1), Some(1)));
        assert_eq!(summary.total, Some(8));

        let none = summary_line_counts(
            "============================ no tests ran in 0.01s =============================",
        );
        assert_eq!(none.and_then(|s| s.total), Some(0));
        assert!(summary_line_counts("=== test session starts ===").is_none());
        assert!(summary_line_counts("=== FAILURES in module ===").is_none());
        assert!(summary_line_counts("=== 1 error in 0.10s ===").is_some());
    }
}
