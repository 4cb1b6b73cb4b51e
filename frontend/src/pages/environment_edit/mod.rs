//! One environment: its sharing (who has it, reservations, maintenance)
//! and its settings (name, description, labels, run time-out, variables),
//! created, edited or deleted here.

mod delete;
mod details;
mod sharing;
mod sharing_state;
mod state;
mod variables;

use shared::Environment;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{self, ApiError};
use crate::app::Route;
use crate::components::form_error::FormError;
use crate::components::health_summary::HealthPanel;
use crate::format;
use crate::hooks::use_polling::use_polling;
use crate::query;
use delete::DeleteControls;
use details::DetailsFields;
use sharing::SharingPanel;
use state::{check, Action, Checked, EnvironmentForm, KNOWN_FIELDS};
use variables::VariablesEditor;

#[derive(Properties, PartialEq)]
pub struct EnvironmentEditProps {
    /// `None` creates a new environment.
    pub id: Option<i32>,
}

/// Creates environment `checked.id`, or updates environment `id`.
async fn save(id: Option<i32>, checked: Checked) -> Result<Environment, ApiError> {
    match id {
        Some(id) => api::environments::update(id, &checked.into_update()).await,
        None => api::environments::create(&checked.into_new()).await,
    }
}

#[component]
pub fn EnvironmentEditPage(props: &EnvironmentEditProps) -> Html {
    let creating = props.id.is_none();
    let navigator = use_navigator();
    let location = use_location();
    let form = use_reducer(|| {
        let mut form = EnvironmentForm::new(creating);
        // `?id=7`: the board's way to set up an id that has no environment.
        if creating {
            let raw = location
                .as_ref()
                .map(Location::query_str)
                .unwrap_or_default();
            form.draft.id = query::param(raw, "id").unwrap_or_default();
        }
        form
    });

    // Live: the sharing controls show who has it now. Only the first
    // answer fills the settings form.
    let existing = use_polling(
        props.id,
        props.id.map(|_| 1000),
        |id: Option<i32>| async move {
            match id {
                Some(id) => api::environments::get_environment(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    {
        let form = form.dispatcher();
        let environment = existing.data().cloned().flatten();
        use_effect_with(environment, move |environment| {
            if let Some(environment) = environment {
                form.dispatch(Action::Loaded(environment.clone()));
            }
        });
    }

    let onsubmit = {
        let form = form.clone();
        let navigator = navigator.clone();
        let id = props.id;
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if form.busy {
                return;
            }
            let checked = match check(&form.draft, id.is_none()) {
                Ok(checked) => checked,
                Err(problems) => return form.dispatch(Action::Refused(problems)),
            };
            form.dispatch(Action::Saving);
            let form = form.dispatcher();
            let navigator = navigator.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match save(id, checked).await {
                    Ok(environment) => {
                        form.dispatch(Action::Saved);
                        if id.is_none() {
                            if let Some(navigator) = navigator {
                                navigator.push(&Route::Environment { id: environment.id });
                            }
                        }
                    }
                    Err(why) => form.dispatch(Action::Failed(why)),
                }
            });
        })
    };
    let on_delete = {
        let form = form.dispatcher();
        let id = props.id;
        Callback::from(move |_: MouseEvent| {
            let Some(id) = id else { return };
            form.dispatch(Action::Deleting);
            let form = form.clone();
            let navigator = navigator.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match api::environments::delete(id).await {
                    Ok(()) => {
                        form.dispatch(Action::Deleted);
                        if let Some(navigator) = navigator {
                            navigator.push(&Route::Environments);
                        }
                    }
                    Err(why) => form.dispatch(Action::Failed(why)),
                }
            });
        })
    };
    let actions = form.dispatcher().to_callback();
    let on_ask = actions.reform(|_: MouseEvent| Action::AskDelete);
    let on_keep = actions.reform(|_: MouseEvent| Action::KeepIt);
    let on_variables = actions.reform(Action::Variables);

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
    if !form.loaded {
        return html! { <section class="page"><h1>{ title }</h1><p class="loading">{ "Loading…" }</p></section> };
    }

    html! {
        <section class="page environment-page">
            <div class="page-head">
                <h1>{ title }</h1>
                if let Some(Some(environment)) = existing.data() {
                    <span class={classes!("badge", format!("env-{}", environment.state.as_str()))}
                        data-state={environment.state.as_str()}>
                        { format::environment_state(environment.state) }
                    </span>
                }
            </div>
            if let Some(Some(environment)) = existing.data() {
                <SharingPanel environment={environment.clone()} on_changed={existing.refresh_callback()} />
                <HealthPanel environment_id={environment.id} />
                <h2>{ "Settings" }</h2>
            }
            <form {onsubmit} novalidate=true aria-label={if creating { "New environment" } else { "Edit environment" }}>
                <DetailsFields form={form.clone()} {creating} />
                <VariablesEditor variables={form.draft.variables.clone()}
                    error={form.problem("variables")} on_edit={on_variables} />
                if let Some(error) = form.form_error() {
                    <FormError error={error.clone()} known={KNOWN_FIELDS} />
                }
                if form.saved {
                    <p class="saved" role="status">{ "Saved." }</p>
                }
                <div class="actions">
                    <button type="submit" class="primary" disabled={form.busy}>
                        { if creating { "Create" } else { "Save" } }
                    </button>
                    <Link<Route> to={Route::Environments} classes="button">{ "Back" }</Link<Route>>
                    if !creating {
                        <DeleteControls confirming={form.confirm_delete} busy={form.busy}
                            {on_ask} {on_delete} {on_keep} />
                    }
                </div>
            </form>
        </section>
    }
}
