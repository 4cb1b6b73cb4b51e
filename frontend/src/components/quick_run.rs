//! Runs given tests right away: user name, environment and a button.

use shared::NewRun;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::components::environment_picker::EnvironmentPicker;
use crate::components::field::{error_id, Field};
use crate::hooks::use_start_run::{use_start_run, StartRun};
use crate::hooks::use_stored_username::use_stored_username;

#[derive(Properties, PartialEq)]
pub struct QuickRunProps {
    pub paths: Vec<String>,
    #[prop_or(AttrValue::Static("Run it now"))]
    pub label: AttrValue,
}

#[component]
pub fn QuickRun(props: &QuickRunProps) -> Html {
    let username = use_stored_username();
    let environment_id = use_state(|| 1_i32);
    let StartRun { error, busy, start } = use_start_run();

    let onsubmit = {
        let paths = props.paths.clone();
        let username = username.clone();
        let environment_id = environment_id.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            start.emit(NewRun {
                username: (*username).clone(),
                environment_id: *environment_id,
                paths: paths.clone(),
            });
        })
    };
    // Editing a field takes back the server's complaint about it.
    let forget = |field: &'static str| {
        let error = error.clone();
        move || error.set(error.as_ref().and_then(|e| e.without_field(field)))
    };
    let oninput = {
        let username = username.clone();
        let forget = forget("username");
        Callback::from(move |event: InputEvent| {
            let input: HtmlInputElement = event.target_unchecked_into();
            username.set(input.value());
            forget();
        })
    };
    let on_environment = {
        let environment_id = environment_id.clone();
        let forget = forget("environment_id");
        Callback::from(move |id| {
            environment_id.set(id);
            forget();
        })
    };
    let username_error = error.as_ref().and_then(|e| e.field("username"));
    let environment_error = error.as_ref().and_then(|e| e.field("environment_id"));
    let other = error
        .as_ref()
        .filter(|e| e.field("username").is_none() && e.field("environment_id").is_none());
    html! {
        <form class="quick-run" onsubmit={onsubmit} aria-label="Run these tests" novalidate=true>
            <div class="row">
                <Field id="quick-username" label="Your name" error={username_error.clone()}>
                    <input id="quick-username" type="text" autocomplete="username"
                        value={(*username).clone()} {oninput}
                        aria-invalid={username_error.is_some().then_some("true")}
                        aria-describedby={username_error.is_some().then(|| error_id("quick-username"))} />
                </Field>
                <Field id="quick-environment" label="Environment" error={environment_error.clone()}>
                    <EnvironmentPicker id="quick-environment" value={*environment_id}
                        on_change={on_environment} invalid={environment_error.is_some()} />
                </Field>
            </div>
            if let Some(error) = other {
                <p class="error" role="alert">{ error.message().to_string() }
                    { for error.other_fields(&["username", "environment_id"]).into_iter().map(|(field, why)| html! {
                        <><br />{ format!("{field}: {why}") }</>
                    }) }
                </p>
            }
            <button type="submit" class="primary" disabled={*busy}>{ props.label.clone() }</button>
        </form>
    }
}
