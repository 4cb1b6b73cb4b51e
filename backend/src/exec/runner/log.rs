//! A run's log on its way to the database: written live up to half the cap,
//! then only the newest output is kept in memory, so whatever a test
//! prints, the stored log keeps its head and its tail and memory stays
//! bounded.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct LogBuffer {
    head_budget: usize,
    tail_budget: usize,
    /// Bytes already in the database: where `pending` starts.
    stored: i64,
    /// Head output not yet written (kept while the database is away).
    pending: String,
    head_used: usize,
    tail: VecDeque<String>,
    tail_bytes: usize,
    cut_bytes: u64,
}

impl LogBuffer {
    pub fn new(cap: usize) -> LogBuffer {
        let head_budget = cap / 2;
        LogBuffer {
            head_budget,
            tail_budget: cap - head_budget,
            stored: 0,
            pending: String::new(),
            head_used: 0,
            tail: VecDeque::new(),
            tail_bytes: 0,
            cut_bytes: 0,
        }
    }

    pub fn push(&mut self, line: String) {
        let in_head = self.tail.is_empty() && self.head_used + line.len() <= self.head_budget;
        if in_head {
            self.head_used += line.len();
            self.pending.push_str(&line);
            return;
        }
        self.tail_bytes += line.len();
        self.tail.push_back(line);
        while self.tail_bytes > self.tail_budget {
            let Some(oldest) = self.tail.pop_front() else {
                break;
            };
            self.tail_bytes -= oldest.len();
            self.cut_bytes += oldest.len() as u64;
        }
    }

    /// The head output to write next, and the offset it goes to.
    pub fn pending(&self) -> (i64, &str) {
        (self.stored, &self.pending)
    }

    /// The pending output up to `len` bytes is in the database.
    pub fn mark_stored(&mut self, len: usize) {
        self.pending.drain(..len);
        self.stored += len as i64;
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Everything not yet stored, with a marker where output was cut, and
    /// the offset it goes to.
    pub fn finish(self) -> (i64, String) {
        let mut rest = self.pending;
        if self.cut_bytes > 0 {
            if !rest.is_empty() && !rest.ends_with('\n') {
                rest.push('\n');
            }
            rest.push_str(&format!(
                "\n… {} bytes cut (log limit reached) …\n\n",
                self.cut_bytes
            ));
        }
        for line in self.tail {
            rest.push_str(&line);
        }
        (self.stored, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_logs_are_kept_whole() {
        let mut log = LogBuffer::new(100);
        log.push("one\n".into());
        log.push("two\n".into());
        assert_eq!(log.pending(), (0, "one\ntwo\n"));
        log.mark_stored(4);
        assert_eq!(log.pending(), (4, "two\n"));
        assert_eq!(log.finish(), (4, "two\n".to_string()));
    }

    #[test]
    fn big_logs_keep_head_and_tail_with_a_marker() {
        let mut log = LogBuffer::new(40);
        for i in 0..100 {
            log.push(format!("line {i:03}\n"));
        }
        let (offset, rest) = log.finish();
        assert_eq!(offset, 0);
        assert!(rest.starts_with("line 000\nline 001\n"), "{rest}");
        assert!(rest.ends_with("line 098\nline 099\n"), "{rest}");
        let kept_lines = rest.lines().filter(|l| l.starts_with("line")).count();
        assert_eq!(kept_lines, 4);
        assert!(rest.contains("… 864 bytes cut"), "{rest}");
    }
}
