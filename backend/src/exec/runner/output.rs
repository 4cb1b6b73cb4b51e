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

/// pytest's closing line as read from its output: the counts of a run
/// whose reporter plugin said nothing (it could not be loaded).
#[derive(Debug, Default, Clone)]
pub struct Progress {
    pub final_counts: Option<RunSummary>,
}

impl Progress {
    pub fn observe(&mut self, raw_line: &str) {
        // Only a line that may be the closing one is worth stripping.
        if !raw_line.contains(" in ") || !raw_line.contains("==") {
            return;
        }
        if let Some(counts) = summary_line_counts(strip_ansi(raw_line).trim_end()) {
            self.final_counts = Some(counts);
        }
    }
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
        ..RunSummary::default()
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
            "subtests" if words.next() == Some("passed") => {
                summary.subtests_passed = Some(number);
                understood = true;
                continue;
            }
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
    fn the_closing_line_is_found_among_the_output() {
        let mut progress = Progress::default();
        for line in [
            "smoke/test_x.py::test_a \u{1b}[32mPASSED\u{1b}[0m                    [ 25%]",
            "\u{1b}[31m==== \u{1b}[1m1 failed\u{1b}[0m, 3 passed, 2 subtests passed in 0.10s ====\u{1b}[0m",
        ] {
            progress.observe(line);
        }
        let counts = progress.final_counts.unwrap_or_default();
        assert_eq!((counts.failed, counts.passed), (Some(1), Some(3)));
        assert_eq!(counts.subtests_passed, Some(2));
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
