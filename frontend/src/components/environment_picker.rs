//! Picks where a run goes: one of the environments, showing which are busy
//! and how long their queues are, or any free environment with a label (a
//! pool), showing how many it has and how many are free. Polls the list
//! every second.

use std::collections::BTreeMap;

use shared::{Environment, EnvironmentState, RunTarget, MAX_ENVIRONMENT_ID, MIN_ENVIRONMENT_ID};
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::api;
use crate::components::field::error_id;
use crate::format;
use crate::hooks::use_polling::use_polling;

#[derive(Properties, PartialEq)]
pub struct EnvironmentPickerProps {
    pub id: AttrValue,
    pub value: RunTarget,
    pub on_change: Callback<RunTarget>,
    #[prop_or_default]
    pub invalid: bool,
}

/// The `<option>` value of a target: its id, or `label:` and the label.
pub fn target_value(target: &RunTarget) -> String {
    match target {
        RunTarget::Environment(id) => id.to_string(),
        RunTarget::Pool(label) => format!("label:{label}"),
    }
}

/// The target an `<option>` value stands for.
pub fn parse_target(value: &str) -> Option<RunTarget> {
    match value.strip_prefix("label:") {
        Some(label) if !label.is_empty() => Some(RunTarget::Pool(label.to_string())),
        Some(_) => None,
        None => value.parse().ok().map(RunTarget::Environment),
    }
}

fn option_label(environment: &Environment) -> String {
    let state = match (environment.state, &environment.hold, environment.queued) {
        (EnvironmentState::Held, Some(hold), 0) => format!("held by {}", hold.owner),
        (EnvironmentState::Held, Some(hold), queued) => {
            format!("held by {}, {queued} queued", hold.owner)
        }
        (state, _, 0) => format::environment_state(state).to_string(),
        (state, _, queued) => format!("{}, {queued} queued", format::environment_state(state)),
    };
    format!("{} · {} — {}", environment.id, environment.name, state)
}

/// Each label with how many environments have it and how many are free.
pub fn pools(environments: &[Environment]) -> BTreeMap<String, (usize, usize)> {
    let mut pools: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for environment in environments {
        for label in &environment.labels {
            let (all, free) = pools.entry(label.clone()).or_default();
            *all += 1;
            if environment.state == EnvironmentState::Idle {
                *free += 1;
            }
        }
    }
    pools
}

fn pool_label(label: &str, (all, free): (usize, usize)) -> String {
    let environments = if all == 1 {
        "1 environment".to_string()
    } else {
        format!("{all} environments")
    };
    format!("any {label} — {environments}, {free} free")
}

#[component]
pub fn EnvironmentPicker(props: &EnvironmentPickerProps) -> Html {
    let environments = use_polling((), Some(1000), |()| api::environments::list());
    let onchange = {
        let on_change = props.on_change.clone();
        Callback::from(move |event: Event| {
            let select: HtmlSelectElement = event.target_unchecked_into();
            if let Some(target) = parse_target(&select.value()) {
                on_change.emit(target);
            }
        })
    };
    let selected = target_value(&props.value);
    let options: Html = match environments.data() {
        Some(list) => {
            let pools = pools(list);
            let known = match &props.value {
                RunTarget::Environment(id) => list.iter().any(|e| e.id == *id),
                RunTarget::Pool(label) => pools.contains_key(label),
            };
            html! {
                <>
                    if !known {
                        <option value={selected.clone()} selected=true>
                            { match &props.value {
                                RunTarget::Environment(id) => format!("{id} · (no such environment)"),
                                RunTarget::Pool(label) => format!("any {label} · (no environment has it)"),
                            } }
                        </option>
                    }
                    <optgroup label="One environment">
                        { for list.iter().map(|environment| {
                            let value = environment.id.to_string();
                            html! {
                                <option key={value.clone()} selected={value == selected} value={value.clone()}>
                                    { option_label(environment) }
                                </option>
                            }
                        }) }
                    </optgroup>
                    if !pools.is_empty() {
                        <optgroup label="Any free environment with a label">
                            { for pools.iter().map(|(label, counts)| {
                                let value = target_value(&RunTarget::Pool(label.clone()));
                                html! {
                                    <option key={value.clone()} selected={value == selected} value={value.clone()}>
                                        { pool_label(label, *counts) }
                                    </option>
                                }
                            }) }
                        </optgroup>
                    }
                </>
            }
        }
        None => (MIN_ENVIRONMENT_ID..=MAX_ENVIRONMENT_ID)
            .map(|id| {
                let value = id.to_string();
                html! {
                    <option key={value.clone()} selected={value == selected} value={value.clone()}>
                        { format!("{id} · env-{id}") }
                    </option>
                }
            })
            .collect(),
    };
    html! {
        <select id={props.id.clone()} {onchange}
            aria-invalid={props.invalid.then_some("true")}
            aria-describedby={props.invalid.then(|| error_id(&props.id))}>
            { options }
        </select>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn targets_round_trip_through_option_values() {
        for target in [RunTarget::Environment(7), RunTarget::Pool("staging".into())] {
            assert_eq!(parse_target(&target_value(&target)), Some(target));
        }
        assert_eq!(parse_target("label:"), None);
        assert_eq!(parse_target("seven"), None);
    }

    #[wasm_bindgen_test]
    fn pools_count_their_environments_and_the_free_ones() {
        let environment = |id: i32, labels: &[&str], state: EnvironmentState| Environment {
            id,
            name: format!("env-{id}"),
            description: String::new(),
            variables: Default::default(),
            run_timeout_secs: None,
            state,
            current_run_id: None,
            queued: 0,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            maintenance: None,
            hold: None,
            reservations_waiting: 0,
            estimated_free_at: None,
            protected: false,
            allowed_users: Vec::new(),
        };
        let list = [
            environment(1, &["staging", "eu"], EnvironmentState::Idle),
            environment(2, &["staging"], EnvironmentState::Busy),
            environment(3, &[], EnvironmentState::Idle),
        ];
        let pools = pools(&list);
        assert_eq!(pools.get("staging"), Some(&(2, 1)));
        assert_eq!(pools.get("eu"), Some(&(1, 1)));
        assert_eq!(pools.len(), 2);
        assert_eq!(
            pool_label("staging", (2, 1)),
            "any staging — 2 environments, 1 free"
        );
    }
}
