//! What `/proc` says about processes: the one reader of `/proc/<pid>/stat`
//! and of the machine's boot id.

use std::fs;

/// The fields of `/proc/<pid>/stat` the service uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// Clock ticks after boot at which the process started: with the boot
    /// id, tells a process from a later one that got the same pid.
    pub start_ticks: u64,
}

impl Stat {
    /// Running or able to run: not a zombie waiting to be reaped.
    pub fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

/// Parses one `stat` line; the command name in parentheses may itself hold
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let (head, rest) = line.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 of stat(5) is fields[0] here.
    let field = |n: usize| fields.get(n - 3).copied();
    Some(Stat {
        pid,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

/// The process `pid`, if it exists.
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The pid of every process of the machine (that can be seen).
fn pids() -> impl Iterator<Item = i32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
}

/// Every process of the machine (that can be seen).
pub fn processes() -> impl Iterator<Item = Stat> {
    pids().filter_map(stat)
}

/// The processes (that can be seen) whose environment, as they were
/// started with it, holds one of `entries` (`NAME=value`), byte for byte.
/// One that cleared its environment, or that another user owns or made
/// non-dumpable, cannot be read, so it is not found; nor is a zombie (its
/// environment is gone).
pub fn processes_with_env_entry(entries: &[Vec<u8>]) -> Vec<i32> {
    pids()
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|b| *b == 0)
                    .any(|e| entries.iter().any(|entry| e == entry.as_slice()))
            })
        })
        .collect()
}

/// This boot of the machine: process ids and start times are only
/// comparable within one.
pub fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line =
            "1234 (py (test) x) S 1 4321 4321 0 -1 4194304 1 2 3 4 5 6 7 8 20 0 3 0 98765 1 2";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            (stat.pid, stat.state, stat.ppid, stat.pgrp),
            (1234, 'S', 1, 4321)
        );
        assert_eq!(stat.start_ticks, 98765);
        assert!(stat.is_live());
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_found() {
        let me = stat(std::process::id() as i32).unwrap();
        assert!(me.is_live());
        assert!(processes().any(|p| p.pid == me.pid));
        assert!(boot_id().is_some());
    }
}
