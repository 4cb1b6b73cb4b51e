//! Runs given tests right away: user name, environment and a button.

use shared::{NewRun, RunTarget};
use yew::prelude::*;

use crate::components::run_target_fields::RunTargetFields;
use crate::hooks::use_start_run::{use_start_run, StartRun};
use crate::hooks::use_stored_username::use_stored_username;

/// The fields the form shows the server's complaints next to.
const TARGET_FIELDS: [&str; 3] = ["username", "environment_id", "environment_label"];

#[derive(Properties, PartialEq)]
pub struct QuickRunProps {
    pub paths: Vec<String>,
    #[prop_or(AttrValue::Static("Run it now"))]
    pub label: AttrValue,
}

#[component]
pub fn QuickRun(props: &QuickRunProps) -> Html {
    let username = use_stored_username();
    let target = use_state(|| RunTarget::Environment(1));
    let StartRun {
        error, busy, start, ..
    } = use_start_run();

    let onsubmit = {
        let paths = props.paths.clone();
        let username = username.clone();
        let target = target.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            start.emit(NewRun::to(&username, (*target).clone(), paths.clone()));
        })
    };
    let other = error.as_ref().filter(|e| {
        TARGET_FIELDS.iter().all(|name| e.field(name).is_none())
            || !e.other_fields(&TARGET_FIELDS).is_empty()
    });
    html! {
        <form class="quick-run" onsubmit={onsubmit} aria-label="Run these tests" novalidate=true>
            <RunTargetFields username_id="quick-username" environment_field_id="quick-environment"
                username={username.clone()} target={target.clone()}
                error={error.clone()} />
            if let Some(error) = other {
                <p class="error" role="alert">{ error.message().to_string() }
                    { for error.other_fields(&TARGET_FIELDS).into_iter().map(|(field, why)| html! {
                        <><br />{ format!("{field}: {why}") }</>
                    }) }
                </p>
            }
            <button type="submit" class="primary" disabled={*busy}>{ props.label.clone() }</button>
        </form>
    }
}
