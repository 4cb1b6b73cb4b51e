//! Run groups: one suite split into shards over a pool of environments,
//! one run per shard, seen as one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::input::Input;
use crate::run::{Run, RunStatus, RunSummary};
use crate::validate::{self, Fields, TestPath};

/// A run group has 2 to 100 shards.
pub const MIN_SHARDS: i32 = 2;
pub const MAX_SHARDS: i32 = 100;

/// Body of `POST /api/run-groups`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewRunGroup {
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, min_length = 1, max_length = 64, example = "alice")
    )]
    pub username: Input<String>,
    /// The pool: every shard runs on a free environment with this label.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, example = "staging")
    )]
    pub environment_label: Input<String>,
    /// How many runs to split the tests into (2 to 100); fewer when the
    /// paths hold fewer test files.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = i32, required = true, minimum = 2, maximum = 100, example = 4)
    )]
    pub shards: Input<i32>,
    /// Test files or directories (or node ids), as for a run.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<String>, required = true, min_items = 1, max_items = 1000,
            example = json!(["smoke"]))
    )]
    pub paths: Input<Vec<String>>,
    /// As for a run: each shard that fails holds its environment this long.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i32>, minimum = 1, maximum = 120))]
    pub hold_on_failure_minutes: Input<Option<i32>>,
}

/// The fields of a [`NewRunGroup`] that passed their checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckedRunGroup {
    pub username: Option<String>,
    pub environment_label: Option<String>,
    pub shards: Option<i32>,
    pub paths: Option<Vec<TestPath>>,
    pub hold_on_failure_minutes: Option<Option<i32>>,
}

impl NewRunGroup {
    pub fn new(username: &str, label: &str, shards: i32, paths: Vec<String>) -> NewRunGroup {
        NewRunGroup {
            username: username.to_string().into(),
            environment_label: label.to_string().into(),
            shards: shards.into(),
            paths: paths.into(),
            hold_on_failure_minutes: Input::Missing,
        }
    }

    pub fn check(&self, fields: &mut Fields) -> CheckedRunGroup {
        CheckedRunGroup {
            username: fields.check(
                "username",
                self.username
                    .require("is required")
                    .and_then(|raw| validate::username(raw)),
            ),
            environment_label: fields.check(
                "environment_label",
                self.environment_label
                    .require("is required: the label of the environments to run on")
                    .and_then(|raw| validate::label_name(raw.trim()).map(|()| raw.trim().into())),
            ),
            shards: fields.check(
                "shards",
                self.shards.require("is required").and_then(|n| shards(*n)),
            ),
            paths: fields.check(
                "paths",
                self.paths
                    .require("is required")
                    .and_then(|raw| validate::run_paths(raw)),
            ),
            hold_on_failure_minutes: fields.check(
                "hold_on_failure_minutes",
                self.hold_on_failure_minutes
                    .optional()
                    .map(|m| m.copied().flatten())
                    .and_then(|m| m.map(validate::hold_minutes).transpose()),
            ),
        }
    }
}

fn shards(n: i32) -> Result<i32, String> {
    if (MIN_SHARDS..=MAX_SHARDS).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be from {MIN_SHARDS} to {MAX_SHARDS}"))
    }
}

/// A run group: its shards' runs and one result for all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunGroup {
    pub id: i64,
    pub username: String,
    pub environment_label: String,
    pub paths: Vec<String>,
    /// The shards it was asked for; `runs` has one per shard that got
    /// tests (fewer when there were fewer test files).
    pub shards_requested: i32,
    pub created_at: DateTime<Utc>,
    /// Each shard's latest run, by shard: a shard whose instance died is
    /// run again, and its new run takes its place here.
    pub runs: Vec<i64>,
    /// Queued until a shard starts, running until every shard finished,
    /// then the worst of them: failed, else error, else cancelled, else
    /// success.
    pub status: RunStatus,
    /// The shards' counts added up.
    pub summary: RunSummary,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// From the first shard's start to the last shard's end.
    pub duration_ms: Option<i64>,
    /// The runs of `runs`, in shard order.
    #[serde(default)]
    pub shard_runs: Vec<Run>,
}

impl RunGroup {
    /// The status of a group whose latest shard runs have these statuses.
    pub fn status_of(shards: &[RunStatus]) -> RunStatus {
        if shards.iter().any(|s| !s.is_finished()) {
            return if shards.contains(&RunStatus::Running) || shards.iter().any(|s| s.is_finished())
            {
                RunStatus::Running
            } else {
                RunStatus::Queued
            };
        }
        [RunStatus::Failed, RunStatus::Error, RunStatus::Cancelled]
            .into_iter()
            .find(|worst| shards.contains(worst))
            .unwrap_or(RunStatus::Success)
    }

    /// The shards' summaries added up; a count stays null until some
    /// shard has it.
    pub fn summary_of<'a>(shards: impl IntoIterator<Item = &'a RunSummary>) -> RunSummary {
        fn add(total: &mut Option<i32>, part: Option<i32>) {
            if let Some(part) = part {
                *total = Some(total.unwrap_or(0).saturating_add(part));
            }
        }
        let mut sum = RunSummary::default();
        for s in shards {
            add(&mut sum.total, s.total);
            add(&mut sum.passed, s.passed);
            add(&mut sum.failed, s.failed);
            add(&mut sum.skipped, s.skipped);
            add(&mut sum.errors, s.errors);
            add(&mut sum.xfailed, s.xfailed);
            add(&mut sum.xpassed, s.xpassed);
            add(&mut sum.subtests_passed, s.subtests_passed);
            add(&mut sum.completed, s.completed);
        }
        sum
    }
}

/// Splits units of work (test files, or node ids) with their expected
/// durations into at most `shards` lists of about equal total duration:
/// the longest unit goes first, each to the shard with the least so far.
/// Deterministic: ties go by name, then to the shard with the fewest
/// units, then the lowest. Units that took no time at all (or that nobody
/// knows) still spread one per shard. Each shard keeps its units in the
/// order given; empty shards are left out.
pub fn split_by_duration(units: &[(String, u64)], shards: usize) -> Vec<Vec<String>> {
    let shards = shards.clamp(1, units.len().max(1));
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| {
        units[b]
            .1
            .cmp(&units[a].1)
            .then_with(|| units[a].0.cmp(&units[b].0))
    });
    let mut totals = vec![0_u64; shards];
    let mut counts = vec![0_usize; shards];
    let mut assigned = vec![0_usize; units.len()];
    for index in order {
        let lightest = (0..shards)
            .min_by_key(|&shard| (totals[shard], counts[shard], shard))
            .unwrap_or(0);
        totals[lightest] = totals[lightest].saturating_add(units[index].1);
        counts[lightest] += 1;
        assigned[index] = lightest;
    }
    let mut split = vec![Vec::new(); shards];
    for (index, (unit, _)) in units.iter().enumerate() {
        split[assigned[index]].push(unit.clone());
    }
    split.retain(|shard| !shard.is_empty());
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(n, d)| (n.to_string(), *d)).collect()
    }

    fn total(shard: &[String], all: &[(String, u64)]) -> u64 {
        shard
            .iter()
            .map(|u| all.iter().find(|(n, _)| n == u).unwrap().1)
            .sum()
    }

    #[test]
    fn splits_balance_durations_and_keep_every_unit_once() {
        let all = units(&[
            ("a.py", 60),
            ("b.py", 10),
            ("c.py", 30),
            ("d.py", 30),
            ("e.py", 20),
            ("f.py", 10),
        ]);
        let split = split_by_duration(&all, 2);
        assert_eq!(split.len(), 2);
        let totals: Vec<u64> = split.iter().map(|s| total(s, &all)).collect();
        assert_eq!(totals, vec![80, 80]);
        let mut seen: Vec<&String> = split.iter().flatten().collect();
        seen.sort();
        assert_eq!(seen.len(), all.len());
        seen.dedup();
        assert_eq!(seen.len(), all.len(), "each unit in exactly one shard");
        // Within a shard, the order given.
        assert_eq!(split[0], vec!["a.py", "e.py"]);
        assert_eq!(split[1], vec!["b.py", "c.py", "d.py", "f.py"]);
    }

    #[test]
    fn fewer_units_than_shards_give_fewer_shards_and_none_empty() {
        let all = units(&[("a.py", 5), ("b.py", 5)]);
        assert_eq!(split_by_duration(&all, 10).len(), 2);
        assert_eq!(split_by_duration(&[], 3), Vec::<Vec<String>>::new());
    }

    #[test]
    fn units_that_took_no_time_still_get_a_shard_each() {
        let all = units(&[("a.py", 0), ("b.py", 0), ("c.py", 0)]);
        assert_eq!(
            split_by_duration(&all, 5),
            vec![
                vec!["a.py".to_string()],
                vec!["b.py".into()],
                vec!["c.py".into()]
            ]
        );
        // They go to the lightest shard; among equally light ones, the emptiest.
        let mixed = units(&[("slow.py", 9), ("x.py", 0), ("y.py", 0), ("z.py", 0)]);
        let split = split_by_duration(&mixed, 2);
        assert_eq!(
            split,
            vec![
                vec!["slow.py".to_string()],
                vec!["x.py".into(), "y.py".into(), "z.py".into()]
            ]
        );
    }

    #[test]
    fn the_split_is_the_same_every_time() {
        let all = units(&[("x", 1), ("y", 1), ("z", 1), ("w", 1)]);
        assert_eq!(split_by_duration(&all, 3), split_by_duration(&all, 3));
        assert_eq!(
            split_by_duration(&all, 3),
            vec![
                vec!["z".to_string(), "w".to_string()],
                vec!["x".into()],
                vec!["y".into()]
            ]
        );
    }

    #[test]
    fn group_status_is_the_worst_finished_or_still_going() {
        use RunStatus::*;
        assert_eq!(RunGroup::status_of(&[Queued, Queued]), Queued);
        assert_eq!(RunGroup::status_of(&[Success, Queued]), Running);
        assert_eq!(RunGroup::status_of(&[Running, Queued]), Running);
        assert_eq!(RunGroup::status_of(&[Success, Success]), Success);
        assert_eq!(RunGroup::status_of(&[Success, Cancelled, Error]), Error);
        assert_eq!(RunGroup::status_of(&[Error, Failed]), Failed);
        assert_eq!(RunGroup::status_of(&[Cancelled, Success]), Cancelled);
    }

    #[test]
    fn summaries_add_up_and_unknown_counts_stay_null() {
        let a = RunSummary {
            total: Some(3),
            passed: Some(2),
            failed: Some(1),
            ..Default::default()
        };
        let b = RunSummary {
            total: Some(4),
            passed: Some(4),
            ..Default::default()
        };
        let sum = RunGroup::summary_of([&a, &b]);
        assert_eq!(sum.total, Some(7));
        assert_eq!(sum.passed, Some(6));
        assert_eq!(sum.failed, Some(1));
        assert_eq!(sum.skipped, None);
    }

    #[test]
    fn a_group_needs_a_label_two_shards_and_paths() {
        let mut fields = Fields::default();
        let checked = NewRunGroup::new("alice", "Bad Label", 1, vec![]).check(&mut fields);
        assert_eq!(checked.environment_label, None);
        assert_eq!(checked.shards, None);
        let errors = fields.into_inner();
        assert!(errors.contains_key("environment_label"));
        assert!(errors.contains_key("shards"));
        assert!(errors.contains_key("paths"));
        let mut fields = Fields::default();
        let checked =
            NewRunGroup::new(" alice ", "staging", 4, vec!["smoke".into()]).check(&mut fields);
        assert!(fields.is_empty());
        assert_eq!(checked.username.as_deref(), Some("alice"));
        assert_eq!(checked.shards, Some(4));
    }
}
