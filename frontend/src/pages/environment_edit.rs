//! Creates, edits or deletes one environment: name, description, run
//! time-out and variables.

use std::collections::BTreeMap;

use shared::{
    validate, Environment, EnvironmentSettings, Input, NewEnvironment, UpdateEnvironment,
    MAX_ENVIRONMENT_ID, MIN_ENVIRONMENT_ID,
};
use web_sys::{HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{self, ApiError};
use crate::app::Route;
use crate::components::field::{error_id, Field};
use crate::hooks::use_polling::use_polling;

#[derive(Properties, PartialEq)]
pub struct EnvironmentEditProps {
    /// `None` creates a new environment.
    pub id: Option<i32>,
}

/// The form's contents, as typed.
#[derive(Debug, Clone, Default, PartialEq)]
struct Draft {
    id: String,
    name: String,
    description: String,
    timeout: String,
    variables: Vec<(String, String)>,
}

impl Draft {
    fn from_environment(environment: &Environment) -> Draft {
        Draft {
            id: environment.id.to_string(),
            name: environment.name.clone(),
            description: environment.description.clone(),
            timeout: environment
                .run_timeout_secs
                .map(|secs| secs.to_string())
                .unwrap_or_default(),
            variables: environment
                .variables
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// What the form holds, checked with the rules the server applies too.
struct Checked {
    id: i32,
    name: String,
    description: String,
    timeout: Option<i32>,
    variables: BTreeMap<String, String>,
}

fn check(draft: &Draft, creating: bool) -> Result<Checked, BTreeMap<String, String>> {
    let mut fields = validate::Fields::default();
    let id = if creating {
        let parsed = draft
            .id
            .trim()
            .parse::<i64>()
            .map_err(|_| {
                format!("must be a number from {MIN_ENVIRONMENT_ID} to {MAX_ENVIRONMENT_ID}")
            })
            .and_then(validate::environment_id);
        fields.check("id", parsed)
    } else {
        Some(0)
    };
    let name = fields.check("name", validate::environment_name(&draft.name));
    let description = fields.check("description", validate::description(&draft.description));
    let timeout = if draft.timeout.trim().is_empty() {
        Some(None)
    } else {
        let parsed = draft
            .timeout
            .trim()
            .parse::<i32>()
            .map(Some)
            .map_err(|_| ())
            .and_then(|secs| validate::run_timeout_secs(secs).map_err(|_| ()))
            .map_err(|()| {
                format!(
                    "must be a whole number of seconds from 1 to {}; leave it empty for the default",
                    validate::MAX_RUN_TIMEOUT_SECS
                )
            });
        fields.check("run_timeout_secs", parsed)
    };
    let mut variables = BTreeMap::new();
    for (name, value) in &draft.variables {
        let name = name.trim();
        if name.is_empty() && value.is_empty() {
            continue;
        }
        if variables.insert(name.to_string(), value.clone()).is_some() {
            fields.add("variables", format!("{name:?} is named twice"));
        }
    }
    let variables = fields.check(
        "variables",
        validate::variables(&variables).map(|()| variables),
    );
    match (id, name, description, timeout, variables) {
        (Some(id), Some(name), Some(description), Some(timeout), Some(variables))
            if fields.is_empty() =>
        {
            Ok(Checked {
                id,
                name,
                description,
                timeout,
                variables,
            })
        }
        _ => Err(fields.into_inner()),
    }
}

#[component]
pub fn EnvironmentEditPage(props: &EnvironmentEditProps) -> Html {
    let creating = props.id.is_none();
    let navigator = use_navigator();
    let draft = use_state(|| Draft {
        variables: Vec::new(),
        ..Draft::default()
    });
    let loaded = use_state(|| creating);
    let local = use_state(BTreeMap::<String, String>::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let confirm_delete = use_state(|| false);
    let saved = use_state(|| false);

    let existing = use_polling(props.id, None, |id: Option<i32>| async move {
        match id {
            Some(id) => api::environments::get_environment(id).await.map(Some),
            None => Ok(None),
        }
    });
    // Fill the form once, when the environment arrives.
    {
        let draft = draft.clone();
        let loaded = loaded.clone();
        let environment = existing.data().cloned().flatten();
        use_effect_with(environment, move |environment| {
            if let Some(environment) = environment {
                if !*loaded {
                    draft.set(Draft::from_environment(environment));
                    loaded.set(true);
                }
            }
        });
    }

    let edit = |apply: fn(&mut Draft, String)| {
        let draft = draft.clone();
        let saved = saved.clone();
        Callback::from(move |event: InputEvent| {
            let value = match event.target_dyn_into::<HtmlTextAreaElement>() {
                Some(area) => area.value(),
                None => event.target_unchecked_into::<HtmlInputElement>().value(),
            };
            let mut next = (*draft).clone();
            apply(&mut next, value);
            draft.set(next);
            saved.set(false);
        })
    };
    let edit_variable = |index: usize, is_name: bool| {
        let draft = draft.clone();
        Callback::from(move |event: InputEvent| {
            let value = event.target_unchecked_into::<HtmlInputElement>().value();
            let mut next = (*draft).clone();
            if let Some(pair) = next.variables.get_mut(index) {
                if is_name {
                    pair.0 = value;
                } else {
                    pair.1 = value;
                }
            }
            draft.set(next);
        })
    };
    let remove_variable = |index: usize| {
        let draft = draft.clone();
        Callback::from(move |_: MouseEvent| {
            let mut next = (*draft).clone();
            if index < next.variables.len() {
                next.variables.remove(index);
            }
            draft.set(next);
        })
    };
    let add_variable = {
        let draft = draft.clone();
        Callback::from(move |_: MouseEvent| {
            let mut next = (*draft).clone();
            next.variables.push((String::new(), String::new()));
            draft.set(next);
        })
    };

    let onsubmit = {
        let draft = draft.clone();
        let local = local.clone();
        let error = error.clone();
        let busy = busy.clone();
        let saved = saved.clone();
        let navigator = navigator.clone();
        let id = props.id;
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if *busy {
                return;
            }
            let checked = match check(&draft, id.is_none()) {
                Ok(checked) => checked,
                Err(problems) => {
                    local.set(problems);
                    error.set(None);
                    return;
                }
            };
            local.set(BTreeMap::new());
            busy.set(true);
            let error = error.clone();
            let busy = busy.clone();
            let saved = saved.clone();
            let navigator = navigator.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let result = match id {
                    Some(id) => {
                        let changes = UpdateEnvironment {
                            id: Input::Missing,
                            settings: EnvironmentSettings::all(
                                checked.name,
                                checked.description,
                                checked.variables,
                                checked.timeout,
                            ),
                        };
                        api::environments::update(id, &changes).await
                    }
                    None => {
                        let new = NewEnvironment {
                            id: checked.id.into(),
                            settings: EnvironmentSettings::all(
                                checked.name,
                                checked.description,
                                checked.variables,
                                checked.timeout,
                            ),
                        };
                        api::environments::create(&new).await
                    }
                };
                busy.set(false);
                match result {
                    Ok(environment) => {
                        error.set(None);
                        saved.set(true);
                        if id.is_none() {
                            if let Some(navigator) = navigator {
                                navigator.push(&Route::Environment { id: environment.id });
                            }
                        }
                    }
                    Err(why) => error.set(Some(why)),
                }
            });
        })
    };

    let delete = {
        let confirm_delete = confirm_delete.clone();
        let error = error.clone();
        let busy = busy.clone();
        let navigator = navigator.clone();
        let id = props.id;
        Callback::from(move |_: MouseEvent| {
            let Some(id) = id else { return };
            if !*confirm_delete {
                confirm_delete.set(true);
                return;
            }
            confirm_delete.set(false);
            busy.set(true);
            let error = error.clone();
            let busy = busy.clone();
            let navigator = navigator.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let result = api::environments::delete(id).await;
                busy.set(false);
                match result {
                    Ok(()) => {
                        if let Some(navigator) = navigator {
                            navigator.push(&Route::Environments);
                        }
                    }
                    Err(why) => error.set(Some(why)),
                }
            });
        })
    };
    let keep = {
        let confirm_delete = confirm_delete.clone();
        Callback::from(move |_: MouseEvent| confirm_delete.set(false))
    };

    let title = match props.id {
        Some(id) => format!("Environment {id}"),
        None => "New environment".to_string(),
    };
    if let (Some(id), Some(problem)) = (props.id, existing.error()) {
        if existing.data().is_none() {
            return html! {
                <section class="page">
                    <h1>{ title }</h1>
                    <p class="error" role="alert">
                        { if problem.status == 404 { format!("There is no environment {id}.") } else { problem.message().to_string() } }
                    </p>
                    <p><Link<Route> to={Route::Environments}>{ "Back to the environments" }</Link<Route>></p>
                </section>
            };
        }
    }
    if !*loaded {
        return html! { <section class="page"><h1>{ title }</h1><p class="loading">{ "Loading…" }</p></section> };
    }

    let problem = |name: &str| {
        local
            .get(name)
            .cloned()
            .or_else(|| error.as_ref().and_then(|e| e.field(name)))
    };
    let invalid = |name: &str, id: &str| {
        (
            problem(name).is_some().then_some("true"),
            problem(name).is_some().then(|| error_id(id)),
        )
    };
    let known = ["id", "name", "description", "run_timeout_secs", "variables"];
    let form_error = error.as_ref().filter(|e| {
        known.iter().all(|name| e.field(name).is_none()) || !e.other_fields(&known).is_empty()
    });
    let (name_invalid, name_described) = invalid("name", "env-name");
    let (id_invalid, id_described) = invalid("id", "env-id");
    let (timeout_invalid, timeout_described) = invalid("run_timeout_secs", "env-timeout");
    let (description_invalid, description_described) = invalid("description", "env-description");

    html! {
        <section class="page environment-page">
            <div class="page-head">
                <h1>{ title }</h1>
                if let Some(Some(environment)) = existing.data() {
                    <span class={classes!("badge", format!("env-{}", if environment.state == shared::EnvironmentState::Busy { "busy" } else { "idle" }))}>
                        { if environment.state == shared::EnvironmentState::Busy { "busy" } else { "idle" } }
                    </span>
                }
            </div>
            <form {onsubmit} novalidate=true aria-label={if creating { "New environment" } else { "Edit environment" }}>
                if creating {
                    <Field id="env-id" label="Id (1 to 100)" error={problem("id")}>
                        <input id="env-id" type="number" min="1" max="100" inputmode="numeric"
                            value={draft.id.clone()} oninput={edit(|d, v| d.id = v)}
                            aria-invalid={id_invalid} aria-describedby={id_described} />
                    </Field>
                }
                <Field id="env-name" label="Name" error={problem("name")}>
                    <input id="env-name" type="text" value={draft.name.clone()} oninput={edit(|d, v| d.name = v)}
                        aria-invalid={name_invalid} aria-describedby={name_described} />
                </Field>
                <Field id="env-description" label="Description" error={problem("description")}>
                    <textarea id="env-description" rows="3" value={draft.description.clone()}
                        oninput={edit(|d, v| d.description = v)}
                        aria-invalid={description_invalid} aria-describedby={description_described} />
                </Field>
                <Field id="env-timeout" label="Run time-out in seconds" error={problem("run_timeout_secs")}
                    hint={AttrValue::Static("Empty: the service's default.")}>
                    <input id="env-timeout" type="number" min="1" inputmode="numeric" placeholder="default"
                        value={draft.timeout.clone()} oninput={edit(|d, v| d.timeout = v)}
                        aria-invalid={timeout_invalid} aria-describedby={timeout_described} />
                </Field>
                <fieldset class={classes!("variables", problem("variables").is_some().then_some("invalid"))}>
                    <legend>{ "Variables" }</legend>
                    <p class="hint">{ "Passed to the tests as environment variables. Names: letters, digits and _, not starting with a digit." }</p>
                    { for draft.variables.iter().enumerate().map(|(index, (name, value))| html! {
                        <div class="variable" key={index}>
                            <input type="text" placeholder="NAME" value={name.clone()}
                                aria-label={format!("Name of variable {}", index + 1)}
                                oninput={edit_variable(index, true)} />
                            <input type="text" placeholder="value" value={value.clone()}
                                aria-label={format!("Value of variable {}", index + 1)}
                                oninput={edit_variable(index, false)} />
                            <button type="button" class="remove" onclick={remove_variable(index)}
                                aria-label={format!("Remove variable {}", if name.is_empty() { (index + 1).to_string() } else { name.clone() })}>
                                { "✕" }
                            </button>
                        </div>
                    }) }
                    <button type="button" onclick={add_variable}>{ "Add variable" }</button>
                    if let Some(why) = problem("variables") {
                        <p class="field-error" role="alert">{ why }</p>
                    }
                </fieldset>
                if let Some(error) = form_error {
                    <div class="error" role="alert">
                        <p>{ error.message().to_string() }</p>
                        { for error.other_fields(&known).into_iter().map(|(field, why)| html! {
                            <p>{ format!("{field}: {why}") }</p>
                        }) }
                    </div>
                }
                if *saved {
                    <p class="saved" role="status">{ "Saved." }</p>
                }
                <div class="actions">
                    <button type="submit" class="primary" disabled={*busy}>
                        { if creating { "Create" } else { "Save" } }
                    </button>
                    <Link<Route> to={Route::Environments} classes="button">{ "Back" }</Link<Route>>
                    if !creating {
                        <span class="spacer"></span>
                        if *confirm_delete {
                            <span class="confirm" role="alert">{ "Delete this environment?" }</span>
                            <button type="button" class="danger" onclick={delete.clone()} disabled={*busy}>{ "Yes, delete" }</button>
                            <button type="button" onclick={keep}>{ "Keep it" }</button>
                        } else {
                            <button type="button" class="danger" onclick={delete} disabled={*busy}>{ "Delete" }</button>
                        }
                    }
                </div>
            </form>
        </section>
    }
}
