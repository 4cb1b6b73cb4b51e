//! Environment health: per environment over a window, its runs, failure
//! rate, failure streak and the failures of tests that pass elsewhere,
//! weighed into a score with the reasons in words; and the rule that puts
//! a suspect environment into maintenance.

use std::collections::{BTreeSet, HashMap};

use diesel::prelude::*;
use shared::health::rules::{MAX_LISTED_FAILURES, MIN_FAILURES_ONLY_HERE, SUSPECT_STREAK};
use shared::{EnvironmentHealth, EnvironmentSpecificFailure, InsightsQuery, PassedElsewhere};

use super::{missing, ServiceError};
use crate::db;
use crate::db::health::WindowFigures;

/// The window of "this week" for a failed run's tests.
pub const WEEK_DAYS: i32 = 7;

pub fn environments(
    conn: &mut PgConnection,
    query: &InsightsQuery,
) -> Result<Vec<EnvironmentHealth>, ServiceError> {
    let days = query.days().map_err(ServiceError::BadRequest)?;
    let figures = db::health::window_figures(conn, days)?;
    Ok(assess(&figures, days))
}

/// Where each failed or errored test of run `run_id` passed on other
/// environments within the last `days` days.
pub fn passed_elsewhere(
    conn: &mut PgConnection,
    run_id: i64,
    query: &InsightsQuery,
) -> Result<Vec<PassedElsewhere>, ServiceError> {
    let days = query.days().map_err(ServiceError::BadRequest)?;
    let run = db::runs::find(conn, run_id)?.ok_or_else(|| missing(format_args!("run {run_id}")))?;
    let nodeids = db::health::failed_nodeids(conn, run_id)?;
    let mut passed = db::health::passed_on(conn, days, &nodeids, run.environment_id)?;
    Ok(nodeids
        .into_iter()
        .map(|nodeid| {
            let environment_ids = passed.remove(&nodeid).unwrap_or_default();
            PassedElsewhere {
                passed_elsewhere: environment_ids.len() as i64,
                environment_ids,
                nodeid,
            }
        })
        .collect())
}

/// Where a test passed and failed within the window, by environment.
#[derive(Default)]
struct Spread {
    passed_on: BTreeSet<i32>,
    failed_on: BTreeSet<i32>,
}

impl Spread {
    fn others(set: &BTreeSet<i32>, here: i32) -> i64 {
        set.len() as i64 - i64::from(set.contains(&here))
    }
}

/// Every environment's health from the window's figures, least healthy
/// first.
fn assess(figures: &WindowFigures, days: i32) -> Vec<EnvironmentHealth> {
    let mut spread: HashMap<&str, Spread> = HashMap::new();
    for test in &figures.tests {
        let entry = spread.entry(test.nodeid.as_str()).or_default();
        if test.passes > 0 {
            entry.passed_on.insert(test.environment_id);
        }
        if test.failures > 0 {
            entry.failed_on.insert(test.environment_id);
        }
    }
    let mut failures_by_environment: HashMap<i32, Vec<EnvironmentSpecificFailure>> = HashMap::new();
    let mut failed_results: HashMap<i32, (i64, i64, i64)> = HashMap::new();
    for test in figures.tests.iter().filter(|t| t.failures > 0) {
        let here = test.environment_id;
        let Some(where_) = spread.get(test.nodeid.as_str()) else {
            continue;
        };
        let passed_elsewhere = Spread::others(&where_.passed_on, here);
        let failed_elsewhere = Spread::others(&where_.failed_on, here);
        // (all failed results, those only here, those also failing elsewhere)
        let totals = failed_results.entry(here).or_default();
        totals.0 += test.failures;
        if failed_elsewhere > 0 {
            totals.2 += test.failures;
        }
        if passed_elsewhere > 0 {
            if failed_elsewhere == 0 {
                totals.1 += test.failures;
            }
            failures_by_environment
                .entry(here)
                .or_default()
                .push(EnvironmentSpecificFailure {
                    nodeid: test.nodeid.clone(),
                    failed_here: test.failures,
                    passed_elsewhere,
                    failed_elsewhere,
                });
        }
    }
    let succeeding: BTreeSet<i32> = figures
        .environments
        .iter()
        .filter(|e| e.runs > 0 && e.streak == 0)
        .map(|e| e.environment_id)
        .collect();
    let mut health: Vec<EnvironmentHealth> = figures
        .environments
        .iter()
        .map(|env| {
            let id = env.environment_id;
            let (failed, only_here, also_elsewhere) =
                failed_results.get(&id).copied().unwrap_or_default();
            let mut listed = failures_by_environment.remove(&id).unwrap_or_default();
            listed.sort_by(|a, b| {
                b.failed_here
                    .cmp(&a.failed_here)
                    .then_with(|| a.nodeid.cmp(&b.nodeid))
            });
            listed.truncate(MAX_LISTED_FAILURES);
            let others_succeed = succeeding.iter().any(|&other| other != id);
            judge(Judged {
                environment_id: id,
                days,
                runs: env.runs,
                failed_runs: env.failed_runs,
                streak: env.streak.min(env.runs),
                failed_results: failed,
                failures_only_here: only_here,
                failures_also_elsewhere: also_elsewhere,
                others_succeed,
                listed,
            })
        })
        .collect();
    health.sort_by(|a, b| {
        a.score
            .total_cmp(&b.score)
            .then_with(|| b.suspect.cmp(&a.suspect))
            .then_with(|| b.failure_rate.total_cmp(&a.failure_rate))
            .then_with(|| a.environment_id.cmp(&b.environment_id))
    });
    health
}

/// One environment's figures, before they are weighed.
pub struct Judged {
    pub environment_id: i32,
    pub days: i32,
    pub runs: i64,
    pub failed_runs: i64,
    /// Within the window.
    pub streak: i64,
    pub failed_results: i64,
    pub failures_only_here: i64,
    pub failures_also_elsewhere: i64,
    /// Another environment's latest run in the window succeeded.
    pub others_succeed: bool,
    pub listed: Vec<EnvironmentSpecificFailure>,
}

/// Weighs an environment's figures into its score, suspicion and reasons.
///
/// score = 1 − 0.4 × failure rate − 0.4 × (failures only here / failed
/// results) − 0.2 × min(streak, 5) / 5, at most 0.5 when suspect, rounded
/// to three decimals.
pub fn judge(j: Judged) -> EnvironmentHealth {
    let failure_rate = if j.runs > 0 {
        j.failed_runs as f64 / j.runs as f64
    } else {
        0.0
    };
    let only_here_share = if j.failed_results > 0 {
        j.failures_only_here as f64 / j.failed_results as f64
    } else {
        0.0
    };
    let streak_share = j.streak.min(SUSPECT_STREAK) as f64 / SUSPECT_STREAK as f64;
    let mostly_here = j.failures_only_here >= MIN_FAILURES_ONLY_HERE
        && 2 * j.failures_only_here > j.failed_results;
    let streak_alone = j.streak >= SUSPECT_STREAK && j.others_succeed;
    let suspect = mostly_here || streak_alone;
    let mut score =
        (1.0 - 0.4 * failure_rate - 0.4 * only_here_share - 0.2 * streak_share).max(0.0);
    if suspect {
        score = score.min(0.5);
    }
    let score = (score * 1000.0).round() / 1000.0;

    let mut reasons = Vec::new();
    if j.runs == 0 {
        reasons.push(format!(
            "no finished runs in the last {} {}",
            j.days,
            plural(j.days as i64, "day", "days")
        ));
    } else if j.failed_runs == 0 {
        reasons.push(format!(
            "{} {}, none failed",
            j.runs,
            plural(j.runs, "run", "runs")
        ));
    } else {
        reasons.push(format!(
            "{} of {} runs failed or errored",
            j.failed_runs, j.runs
        ));
    }
    if j.failures_only_here > 0 {
        reasons.push(format!(
            "{} of {} failures are tests that pass on other environments and fail on no other",
            j.failures_only_here, j.failed_results
        ));
    }
    if j.failures_also_elsewhere > 0 {
        reasons.push(format!(
            "{} of {} failures are tests that fail on other environments too",
            j.failures_also_elsewhere, j.failed_results
        ));
    }
    if j.streak >= 2 {
        let mut streak = if j.streak == j.runs {
            format!("all {} runs failed", j.runs)
        } else {
            format!("last {} runs failed", j.streak)
        };
        if streak_alone {
            streak.push_str(" while another environment's latest run succeeded");
        }
        reasons.push(streak);
    }
    EnvironmentHealth {
        environment_id: j.environment_id,
        runs: j.runs,
        failed_runs: j.failed_runs,
        failure_rate,
        failure_streak: j.streak,
        failed_results: j.failed_results,
        failures_only_here: j.failures_only_here,
        score,
        suspect,
        reasons,
        env_specific_failures: j.listed,
    }
}

fn plural<'a>(n: i64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A window's suspect environments, and each test's failed results on
/// them.
pub struct Suspects {
    pub environments: Vec<i32>,
    /// By node id: failed and errored results on suspect environments,
    /// and which of them.
    pub failures: HashMap<String, (i64, Vec<i32>)>,
}

pub fn suspects(conn: &mut PgConnection, days: i32) -> Result<Suspects, ServiceError> {
    let figures = db::health::window_figures(conn, days)?;
    let environments: Vec<i32> = assess(&figures, days)
        .into_iter()
        .filter(|h| h.suspect)
        .map(|h| h.environment_id)
        .collect();
    let mut failures: HashMap<String, (i64, Vec<i32>)> = HashMap::new();
    for test in figures.tests {
        if test.failures > 0 && environments.contains(&test.environment_id) {
            let entry = failures.entry(test.nodeid).or_default();
            entry.0 += test.failures;
            entry.1.push(test.environment_id);
        }
    }
    for (_, ids) in failures.values_mut() {
        ids.sort_unstable();
    }
    Ok(Suspects {
        environments,
        failures,
    })
}

/// The automatic maintenance rule (`HEALTH_AUTO_MAINTENANCE=on`): puts
/// each environment that is suspect over the last week into maintenance,
/// with the reasons in words. It acts on an environment once per piece of
/// evidence: after an admin ends that maintenance, only a failed or
/// errored run newer than the one it acted upon puts it back. One
/// instance at a time applies it (an advisory lock); the others skip
/// their turn. Answers the environments it put into maintenance.
pub fn apply_auto_maintenance(conn: &mut PgConnection) -> Result<Vec<i32>, ServiceError> {
    let figures = db::health::window_figures(conn, WEEK_DAYS)?;
    let latest: HashMap<i32, (i64, i64)> = figures
        .environments
        .iter()
        .map(|e| (e.environment_id, (e.last_run_id, e.streak)))
        .collect();
    let suspects: Vec<EnvironmentHealth> = assess(&figures, WEEK_DAYS)
        .into_iter()
        .filter(|h| h.suspect)
        .collect();
    if suspects.is_empty() {
        return Ok(Vec::new());
    }
    let applied = conn.transaction(|conn| {
        let mut applied = Vec::new();
        if !db::health::try_lock_auto_maintenance(conn)? {
            return QueryResult::Ok(applied);
        }
        let acted = db::health::last_actions(conn)?;
        for health in suspects {
            let id = health.environment_id;
            let (last_run_id, streak) = latest.get(&id).copied().unwrap_or_default();
            let new_evidence = match acted.get(&id) {
                None => true,
                Some(&acted_on) => last_run_id > acted_on && streak > 0,
            };
            if !new_evidence || db::health::lock_in_maintenance(conn, id)? != Some(false) {
                continue;
            }
            let reason = format!(
                "automatic: environment health is suspect over the last {WEEK_DAYS} days: {}",
                health.reasons.join("; ")
            );
            db::environments::start_maintenance(conn, id, &reason, None)?;
            db::health::record_action(conn, id, last_run_id, &reason)?;
            tracing::warn!(environment_id = id, %reason, "put into maintenance by the health rule");
            applied.push(id);
        }
        Ok(applied)
    })?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Judged {
        Judged {
            environment_id: 7,
            days: 7,
            runs: 0,
            failed_runs: 0,
            streak: 0,
            failed_results: 0,
            failures_only_here: 0,
            failures_also_elsewhere: 0,
            others_succeed: false,
            listed: Vec::new(),
        }
    }

    #[test]
    fn an_environment_without_runs_is_healthy_and_says_so() {
        let health = judge(figures());
        assert_eq!(health.score, 1.0);
        assert!(!health.suspect);
        assert_eq!(health.reasons, ["no finished runs in the last 7 days"]);
    }

    #[test]
    fn failures_that_only_happen_here_make_it_suspect_and_cap_the_score() {
        let health = judge(Judged {
            runs: 10,
            failed_runs: 2,
            streak: 1,
            failed_results: 4,
            failures_only_here: 3,
            failures_also_elsewhere: 1,
            ..figures()
        });
        assert!(health.suspect);
        // 1 − 0.4 × 0.2 − 0.4 × 0.75 − 0.2 × 0.2 = 0.58, capped at 0.5.
        assert_eq!(health.score, 0.5);
        assert_eq!(
            health.reasons,
            [
                "2 of 10 runs failed or errored",
                "3 of 4 failures are tests that pass on other environments and fail on no other",
                "1 of 4 failures are tests that fail on other environments too",
            ]
        );
    }

    #[test]
    fn a_streak_is_suspect_only_while_another_environment_succeeds() {
        let streak = Judged {
            runs: 6,
            failed_runs: 5,
            streak: 5,
            ..figures()
        };
        let alone = judge(Judged {
            others_succeed: false,
            ..streak
        });
        assert!(
            !alone.suspect,
            "every environment fails: the tests, not this one"
        );
        assert_eq!(
            alone.reasons.last().map(String::as_str),
            Some("last 5 runs failed")
        );
        let apart = judge(Judged {
            runs: 6,
            failed_runs: 5,
            streak: 5,
            others_succeed: true,
            ..figures()
        });
        assert!(apart.suspect);
        // 1 − 0.4 × 5/6 − 0 − 0.2 = 0.4666…
        assert_eq!(apart.score, 0.467);
    }

    #[test]
    fn too_few_failures_only_here_are_not_enough() {
        let health = judge(Judged {
            runs: 4,
            failed_runs: 2,
            failed_results: 2,
            failures_only_here: 2,
            ..figures()
        });
        assert!(!health.suspect);
    }
}
