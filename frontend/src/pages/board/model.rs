//! What the board shows, derived from the environments and the runs going
//! now. Pure, so it is tested without a browser; each tile's facts are
//! kept to what it displays (times to the minute), so that a poll whose
//! answer changed elsewhere leaves the other 99 tiles alone.

use chrono::{DateTime, Utc};
use shared::{
    validate, Environment, EnvironmentHealth, EnvironmentState, Run, MAX_ENVIRONMENT_ID,
    MIN_ENVIRONMENT_ID,
};

/// One environment id on the board.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub id: i32,
    /// `None`: no environment has this id (deleted, or never set up).
    pub state: Option<EnvironmentState>,
    pub name: String,
    /// Who has it now: the user of the run going, else the hold's owner.
    pub holder: Option<String>,
    pub current_run_id: Option<i64>,
    /// The end of the hold, to the minute.
    pub hold_until: Option<DateTime<Utc>>,
    /// Why it is out of rotation.
    pub maintenance: Option<String>,
    pub queued: i64,
    pub reservations_waiting: i64,
    /// When it should be free, to the minute; only while it is not.
    pub free_at: Option<DateTime<Utc>>,
    pub labels: Vec<String>,
    /// Its health over the last week, once known.
    pub health: Option<TileHealth>,
}

/// What a tile shows of an environment's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileHealth {
    /// "87%".
    pub percent: String,
    /// `good`, `fair` or `poor`.
    pub grade: &'static str,
    pub suspect: bool,
    /// The first reason, for the tile's title.
    pub reason: Option<String>,
}

/// Puts each environment's health on its tile; environments without runs
/// in the window show none.
pub fn with_health(tiles: &mut [Tile], ranking: &[EnvironmentHealth]) {
    for tile in tiles.iter_mut().filter(|t| t.state.is_some()) {
        tile.health = crate::health::of(ranking, tile.id)
            .filter(|h| h.runs > 0)
            .map(|h| TileHealth {
                percent: crate::health::percent(h.score),
                grade: crate::health::grade(h.score),
                suspect: h.suspect,
                reason: h.reasons.first().cloned(),
            });
    }
}

impl Tile {
    fn not_set_up(id: i32) -> Tile {
        Tile {
            id,
            state: None,
            name: String::new(),
            holder: None,
            current_run_id: None,
            hold_until: None,
            maintenance: None,
            queued: 0,
            reservations_waiting: 0,
            free_at: None,
            labels: Vec::new(),
            health: None,
        }
    }

    fn of(environment: &Environment, running: &[Run]) -> Tile {
        let hold_owner = environment.hold.as_ref().map(|hold| hold.owner.clone());
        let holder = match environment.current_run_id {
            Some(id) => running
                .iter()
                .find(|run| run.id == id)
                .map(|run| run.username.clone())
                .or(hold_owner),
            None => hold_owner,
        };
        Tile {
            id: environment.id,
            state: Some(environment.state),
            name: environment.name.clone(),
            holder,
            current_run_id: environment.current_run_id,
            hold_until: environment.hold.as_ref().map(|hold| to_minute(hold.until)),
            maintenance: environment.maintenance.as_ref().map(|m| m.reason.clone()),
            queued: environment.queued,
            reservations_waiting: environment.reservations_waiting,
            free_at: environment
                .estimated_free_at
                .filter(|_| shows_free_at(environment))
                .map(to_minute),
            labels: environment.labels.clone(),
            health: None,
        }
    }

    /// The word for its state, as the board shows it.
    pub fn state_word(&self) -> &'static str {
        self.state
            .map(crate::format::environment_state)
            .unwrap_or("not set up")
    }
}

/// Whether the estimate of when it is free says something: not while it
/// is free, nor while a hold with nothing behind it says its end already.
pub fn shows_free_at(environment: &Environment) -> bool {
    let waits = environment.queued > 0 || environment.reservations_waiting > 0;
    match environment.state {
        EnvironmentState::Idle | EnvironmentState::Held => waits,
        _ => true,
    }
}

/// A time without its seconds: the board shows minutes, and a tile need
/// not change when an estimate moves by a second.
fn to_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp().div_euclid(60) * 60, 0).unwrap_or(at)
}

/// The tiles of every id from 1 to 100 that `filter` lets through: all of
/// them without a filter, else the environments that have every label of
/// it. `running` are the runs going now, for their users.
pub fn tiles(environments: &[Environment], running: &[Run], filter: &[String]) -> Vec<Tile> {
    // The list comes by id; a linear walk costs the wasm less than a map.
    let mut next = environments.iter().peekable();
    (MIN_ENVIRONMENT_ID..=MAX_ENVIRONMENT_ID)
        .filter_map(|id| {
            while next.next_if(|e| e.id < id).is_some() {}
            match next.next_if(|e| e.id == id) {
                Some(environment) => filter
                    .iter()
                    .all(|label| environment.labels.contains(label))
                    .then(|| Tile::of(environment, running)),
                None => filter.is_empty().then(|| Tile::not_set_up(id)),
            }
        })
        .collect()
}

/// Adds `label` to the sorted `labels` unless it is there.
fn insert_sorted(labels: &mut Vec<String>, label: &str) {
    if let Err(at) = labels.binary_search_by(|l| l.as_str().cmp(label)) {
        labels.insert(at, label.to_string());
    }
}

/// Every label in use, sorted, once each.
pub fn all_labels(environments: &[Environment]) -> Vec<String> {
    let mut labels = Vec::new();
    for label in environments.iter().flat_map(|e| e.labels.iter()) {
        insert_sorted(&mut labels, label);
    }
    labels
}

/// The label filter of the URL (`?labels=eu,staging`): valid labels only,
/// sorted, once each.
pub fn parse_filter(raw: Option<&str>) -> Vec<String> {
    let mut labels = Vec::new();
    for label in raw.unwrap_or_default().split(',').map(str::trim) {
        if validate::label_name(label).is_ok() {
            insert_sorted(&mut labels, label);
        }
    }
    labels
}

/// The filter with `label` switched on or off.
pub fn toggle(filter: &[String], label: &str) -> Vec<String> {
    let mut next: Vec<String> = filter.iter().filter(|l| *l != label).cloned().collect();
    if next.len() == filter.len() {
        insert_sorted(&mut next, label);
    }
    next
}

/// How many tiles are in each state, in the legend's order; states
/// without a tile are left out.
pub fn counts(tiles: &[Tile]) -> Vec<(&'static str, usize)> {
    const ORDER: [&str; 6] = ["free", "busy", "held", "draining", "offline", "not set up"];
    ORDER
        .iter()
        .map(|word| {
            (
                *word,
                tiles.iter().filter(|t| t.state_word() == *word).count(),
            )
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use shared::{Hold, Maintenance, RunStatus, RunSummary};
    use std::collections::BTreeMap;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn at(hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, hour, minute, second)
            .single()
            .unwrap_or_default()
    }

    fn environment(id: i32, labels: &[&str]) -> Environment {
        Environment {
            id,
            name: format!("env-{id}"),
            description: String::new(),
            variables: BTreeMap::new(),
            run_timeout_secs: None,
            state: EnvironmentState::Idle,
            current_run_id: None,
            queued: 0,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            maintenance: None,
            hold: None,
            reservations_waiting: 0,
            estimated_free_at: Some(at(12, 0, 7)),
            protected: false,
            allowed_users: Vec::new(),
        }
    }

    fn running(id: i64, environment_id: i32, username: &str) -> Run {
        Run {
            id,
            username: username.into(),
            environment_id: Some(environment_id),
            environment_label: None,
            paths: vec!["smoke".into()],
            status: RunStatus::Running,
            status_reason: None,
            created_at: at(11, 0, 0),
            started_at: Some(at(11, 0, 1)),
            finished_at: None,
            duration_ms: None,
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

    #[wasm_bindgen_test]
    fn every_id_has_a_tile_and_missing_ones_say_so() {
        let tiles = tiles(&[environment(2, &[]), environment(100, &[])], &[], &[]);
        assert_eq!(tiles.len(), 100);
        assert_eq!(tiles[0].state_word(), "not set up");
        assert_eq!(tiles[1].state_word(), "free");
        assert_eq!(tiles[1].name, "env-2");
        assert_eq!(tiles[99].id, 100);
        assert_eq!(counts(&tiles), vec![("free", 2), ("not set up", 98)]);
    }

    #[wasm_bindgen_test]
    fn the_holder_is_the_runs_user_else_the_holds_owner() {
        let mut busy = environment(1, &[]);
        busy.state = EnvironmentState::Busy;
        busy.current_run_id = Some(42);
        busy.queued = 2;
        busy.estimated_free_at = Some(at(12, 30, 59));
        let mut held = environment(2, &[]);
        held.state = EnvironmentState::Held;
        held.hold = Some(Hold {
            reservation_id: 9,
            owner: "alice".into(),
            reason: "a look".into(),
            until: at(13, 5, 31),
        });
        let mut offline = environment(3, &[]);
        offline.state = EnvironmentState::Offline;
        offline.maintenance = Some(Maintenance {
            reason: "new disks".into(),
            since: at(10, 0, 0),
            until: None,
        });
        offline.estimated_free_at = None;
        let tiles = tiles(&[busy, held, offline], &[running(42, 1, "bob")], &[]);
        assert_eq!(tiles[0].holder.as_deref(), Some("bob"));
        assert_eq!(tiles[0].free_at, Some(at(12, 30, 0)));
        assert_eq!(tiles[1].holder.as_deref(), Some("alice"));
        assert_eq!(tiles[1].hold_until, Some(at(13, 5, 0)));
        assert_eq!(tiles[1].free_at, None, "the hold's end says it");
        assert_eq!(tiles[2].state_word(), "offline");
        assert_eq!(tiles[2].maintenance.as_deref(), Some("new disks"));
        assert_eq!(tiles[2].free_at, None);
    }

    #[wasm_bindgen_test]
    fn a_free_environment_shows_no_estimate_and_seconds_change_nothing() {
        let free = environment(1, &[]);
        let mut later = free.clone();
        later.estimated_free_at = Some(at(12, 0, 45));
        let one = tiles(&[free], &[], &[]);
        let two = tiles(&[later], &[], &[]);
        assert_eq!(one[0].free_at, None);
        assert_eq!(one[0], two[0]);
    }

    #[wasm_bindgen_test]
    fn the_filter_keeps_environments_with_every_label() {
        let environments = [
            environment(1, &["eu", "staging"]),
            environment(2, &["eu"]),
            environment(3, &["us", "staging"]),
        ];
        let shown = |filter: &[&str]| {
            let filter: Vec<String> = filter.iter().map(|l| l.to_string()).collect();
            tiles(&environments, &[], &filter)
                .iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(&["eu"]), [1, 2]);
        assert_eq!(shown(&["eu", "staging"]), [1]);
        assert_eq!(shown(&["nowhere"]), Vec::<i32>::new());
        assert_eq!(shown(&[]).len(), 100);
        assert_eq!(all_labels(&environments), ["eu", "staging", "us"]);
    }

    #[wasm_bindgen_test]
    fn the_filter_is_read_from_the_url_and_toggled() {
        assert_eq!(
            parse_filter(Some(" staging,eu,,eu,Bad Label ")),
            ["eu", "staging"]
        );
        assert_eq!(parse_filter(None), Vec::<String>::new());
        let filter = vec!["eu".to_string()];
        assert_eq!(toggle(&filter, "au"), ["au", "eu"]);
        assert_eq!(toggle(&filter, "eu"), Vec::<String>::new());
    }

    #[wasm_bindgen_test]
    fn tiles_show_the_health_of_environments_that_ran() {
        let health = |id: i32, runs: i64, score: f64, suspect: bool| EnvironmentHealth {
            environment_id: id,
            runs,
            failed_runs: 0,
            failure_rate: 0.0,
            failure_streak: 0,
            failed_results: 0,
            failures_only_here: 0,
            score,
            suspect,
            reasons: vec![format!("reason {id}")],
            env_specific_failures: vec![],
        };
        let environments = [
            environment(1, &[]),
            environment(2, &[]),
            environment(3, &[]),
        ];
        let mut tiles = tiles(&environments, &[], &[]);
        with_health(
            &mut tiles,
            &[
                health(2, 9, 0.25, true),
                health(1, 4, 0.9, false),
                health(3, 0, 1.0, false),
            ],
        );
        assert_eq!(
            tiles[0].health,
            Some(TileHealth {
                percent: "90%".into(),
                grade: "good",
                suspect: false,
                reason: Some("reason 1".into()),
            })
        );
        let second = tiles[1].health.as_ref().unwrap();
        assert_eq!((second.grade, second.suspect), ("poor", true));
        assert_eq!(tiles[2].health, None, "no runs, nothing to say");
        assert_eq!(tiles[3].health, None, "not set up");
    }
}
