//! Environment health as the SPA shows it: grades, percentages and the
//! sentences next to a failed test or a flaky one. Pure, so it is tested
//! without a browser.

use shared::{EnvironmentHealth, FlakyTest};

/// A score's grade, for its colour: `good` from 0.8, `fair` from 0.5,
/// else `poor`.
pub fn grade(score: f64) -> &'static str {
    if score >= 0.8 {
        "good"
    } else if score >= 0.5 {
        "fair"
    } else {
        "poor"
    }
}

/// A score as a whole percentage: "87%".
pub fn percent(value: f64) -> String {
    format!("{}%", (value.clamp(0.0, 1.0) * 100.0).round() as i64)
}

/// The health of environment `id` in a ranking, if listed.
pub fn of(list: &[EnvironmentHealth], id: i32) -> Option<&EnvironmentHealth> {
    list.iter().find(|h| h.environment_id == id)
}

/// Under a failed test: how many other environments it passed on.
pub fn passed_elsewhere(count: i64) -> String {
    match count {
        0 => "passed on no other environment this week".to_string(),
        1 => "passed on 1 other environment this week".to_string(),
        n => format!("passed on {n} other environments this week"),
    }
}

/// Next to a flaky test: what was left out because suspect environments
/// explain it; `None` when nothing was.
pub fn suspect_note(test: &FlakyTest) -> Option<String> {
    if test.flips_on_suspect_environments == 0 && test.failures_on_suspect_environments == 0 {
        return None;
    }
    let ids: Vec<String> = test
        .suspect_environment_ids
        .iter()
        .map(i32::to_string)
        .collect();
    let where_ = match ids.len() {
        0 => "suspect environments".to_string(),
        1 => format!("suspect environment {}", ids[0]),
        _ => format!("suspect environments {}", ids.join(", ")),
    };
    let flips = test.flips_on_suspect_environments;
    let failures = test.failures_on_suspect_environments;
    Some(format!(
        "{flips} {} and {failures} {} on {where_} not counted",
        if flips == 1 { "flip" } else { "flips" },
        if failures == 1 { "failure" } else { "failures" },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn flaky(flips: i64, failures: i64, ids: &[i32]) -> FlakyTest {
        FlakyTest {
            nodeid: "a.py::t".into(),
            flips: 4,
            last_flip_at: None,
            run_ids: vec![],
            flips_on_suspect_environments: flips,
            failures_on_suspect_environments: failures,
            suspect_environment_ids: ids.to_vec(),
        }
    }

    #[wasm_bindgen_test]
    fn grades_follow_the_score() {
        assert_eq!(grade(1.0), "good");
        assert_eq!(grade(0.8), "good");
        assert_eq!(grade(0.79), "fair");
        assert_eq!(grade(0.5), "fair");
        assert_eq!(grade(0.499), "poor");
        assert_eq!(percent(0.874), "87%");
        assert_eq!(percent(1.2), "100%");
    }

    #[wasm_bindgen_test]
    fn a_failed_test_says_where_it_passed() {
        assert_eq!(
            passed_elsewhere(0),
            "passed on no other environment this week"
        );
        assert_eq!(
            passed_elsewhere(1),
            "passed on 1 other environment this week"
        );
        assert_eq!(
            passed_elsewhere(4),
            "passed on 4 other environments this week"
        );
    }

    #[wasm_bindgen_test]
    fn a_flaky_test_says_what_suspect_environments_explain() {
        assert_eq!(suspect_note(&flaky(0, 0, &[])), None);
        assert_eq!(
            suspect_note(&flaky(1, 3, &[7])).as_deref(),
            Some("1 flip and 3 failures on suspect environment 7 not counted")
        );
        assert_eq!(
            suspect_note(&flaky(2, 1, &[3, 9])).as_deref(),
            Some("2 flips and 1 failure on suspect environments 3, 9 not counted")
        );
    }
}
