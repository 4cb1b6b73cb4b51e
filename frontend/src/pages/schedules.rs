//! Schedules: runs queued by a cron expression in a time zone. Add, edit,
//! enable or disable, delete; each shows when it fires next.

use shared::{Input, NewSchedule, Schedule};
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{self, ApiError};
use crate::app::Route;
use crate::components::form_error::FormError;
use crate::format;
use crate::hooks::use_polling::use_polling;

/// The form's fields, as typed.
#[derive(Debug, Clone, PartialEq)]
struct Draft {
    /// The schedule being edited; `None` for a new one.
    editing: Option<i64>,
    name: String,
    cron: String,
    timezone: String,
    /// An environment id, or a label for any free environment with it.
    target: String,
    paths: String,
    enabled: bool,
    /// Kept as they are when an existing schedule is saved.
    username: Option<String>,
    hold_on_failure_minutes: Option<i32>,
}

impl Default for Draft {
    fn default() -> Self {
        Draft {
            editing: None,
            name: String::new(),
            cron: "0 2 * * *".into(),
            timezone: "UTC".into(),
            target: "1".into(),
            paths: String::new(),
            enabled: true,
            username: None,
            hold_on_failure_minutes: None,
        }
    }
}

impl Draft {
    fn of(schedule: &Schedule) -> Draft {
        Draft {
            editing: Some(schedule.id),
            name: schedule.name.clone(),
            cron: schedule.cron.clone(),
            timezone: schedule.timezone.clone(),
            target: target_text(schedule),
            paths: schedule.paths.join("\n"),
            enabled: schedule.enabled,
            username: Some(schedule.username.clone()),
            hold_on_failure_minutes: schedule.hold_on_failure_minutes,
        }
    }

    fn body(&self) -> NewSchedule {
        let target = self.target.trim();
        let (environment_id, environment_label) = match target.parse::<i32>() {
            Ok(id) => (Input::Given(Some(id)), Input::Missing),
            Err(_) => (Input::Missing, Input::Given(Some(target.to_string()))),
        };
        NewSchedule {
            name: Input::Given(self.name.clone()),
            cron: Input::Given(self.cron.clone()),
            timezone: Input::Given(Some(self.timezone.clone())),
            environment_id,
            environment_label,
            paths: Input::Given(
                self.paths
                    .split(['\n', ','])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            enabled: Input::Given(self.enabled),
            username: Input::Given(self.username.clone()),
            hold_on_failure_minutes: Input::Given(self.hold_on_failure_minutes),
        }
    }
}

fn target_text(schedule: &Schedule) -> String {
    match (&schedule.environment_id, &schedule.environment_label) {
        (Some(id), _) => id.to_string(),
        (None, Some(label)) => label.clone(),
        (None, None) => String::new(),
    }
}

/// A schedule as a body, with `enabled` changed.
fn toggled(schedule: &Schedule) -> NewSchedule {
    let mut draft = Draft::of(schedule);
    draft.enabled = !schedule.enabled;
    draft.body()
}

#[component]
pub fn SchedulesPage() -> Html {
    let schedules = use_polling((), Some(2000), |()| api::schedules::list());
    let draft = use_state(Draft::default);
    let error = use_state(|| None::<ApiError>);
    let refresh = schedules.refresh_callback();

    let text_input = |field: fn(&mut Draft) -> &mut String| {
        let draft = draft.clone();
        Callback::from(move |e: InputEvent| {
            let mut next = (*draft).clone();
            *field(&mut next) = e.target_unchecked_into::<HtmlInputElement>().value();
            draft.set(next);
        })
    };
    let on_enabled = {
        let draft = draft.clone();
        Callback::from(move |e: Event| {
            let mut next = (*draft).clone();
            next.enabled = e.target_unchecked_into::<HtmlInputElement>().checked();
            draft.set(next);
        })
    };
    let submit = {
        let (draft, error, refresh) = (draft.clone(), error.clone(), refresh.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let body = draft.body();
            let editing = draft.editing;
            let (draft, error, refresh) = (draft.clone(), error.clone(), refresh.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let saved = match editing {
                    Some(id) => api::schedules::update(id, &body).await,
                    None => api::schedules::create(&body).await,
                };
                match saved {
                    Ok(_) => {
                        draft.set(Draft::default());
                        error.set(None);
                        refresh.emit(());
                    }
                    Err(why) => error.set(Some(why)),
                }
            });
        })
    };
    let cancel_edit = {
        let (draft, error) = (draft.clone(), error.clone());
        Callback::from(move |_| {
            draft.set(Draft::default());
            error.set(None);
        })
    };
    let field_error = |name: &str| {
        (*error)
            .as_ref()
            .and_then(|e| e.field(name))
            .map(|why| html! { <p class="field-error">{ why }</p> })
    };
    let row = |schedule: &Schedule| {
        let edit = {
            let (draft, error, schedule) = (draft.clone(), error.clone(), schedule.clone());
            Callback::from(move |_| {
                draft.set(Draft::of(&schedule));
                error.set(None);
            })
        };
        let toggle = {
            let (error, refresh, schedule) = (error.clone(), refresh.clone(), schedule.clone());
            Callback::from(move |_| {
                let (error, refresh, body, id) = (
                    error.clone(),
                    refresh.clone(),
                    toggled(&schedule),
                    schedule.id,
                );
                wasm_bindgen_futures::spawn_local(async move {
                    match api::schedules::update(id, &body).await {
                        Ok(_) => refresh.emit(()),
                        Err(why) => error.set(Some(why)),
                    }
                });
            })
        };
        let delete = {
            let (error, refresh, id) = (error.clone(), refresh.clone(), schedule.id);
            Callback::from(move |_| {
                let (error, refresh) = (error.clone(), refresh.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    match api::schedules::delete(id).await {
                        Ok(()) => refresh.emit(()),
                        Err(why) => error.set(Some(why)),
                    }
                });
            })
        };
        html! {
            <tr key={schedule.id} data-schedule-id={schedule.id.to_string()}>
                <td data-label="Name">{ schedule.name.clone() }</td>
                <td data-label="When"><code>{ schedule.cron.clone() }</code>{ format!(" ({})", schedule.timezone) }</td>
                <td data-label="Environment">{ target_text(schedule) }</td>
                <td data-label="Tests">{ format::paths_summary(&schedule.paths) }</td>
                <td data-label="Next fire" class="next-fire">
                    { match &schedule.next_run_at {
                        Some(at) => html! { <time datetime={format::utc_time(at)}>{ format::local_time(at) }</time> },
                        None => html! { "disabled" },
                    } }
                </td>
                <td data-label="Last run">
                    { match schedule.last_run_id {
                        Some(id) => html! { <Link<Route> to={Route::Run { id }}>{ format!("#{id}") }</Link<Route>> },
                        None => html! { "—" },
                    } }
                    if let Some(why) = &schedule.last_error {
                        <div class="error">{ why.clone() }</div>
                    }
                </td>
                <td data-label="">
                    <button class="button small" onclick={edit}>{ "Edit" }</button>
                    <button class="button small" onclick={toggle}>
                        { if schedule.enabled { "Disable" } else { "Enable" } }
                    </button>
                    <button class="button small danger" onclick={delete}>{ "Delete" }</button>
                </td>
            </tr>
        }
    };
    let list = match (schedules.data(), schedules.error()) {
        (Some(list), _) if list.is_empty() => html! { <p class="hint">{ "No schedules yet." }</p> },
        (Some(list), _) => html! {
            <div class="table-wrap">
                <table class="schedules responsive">
                    <caption class="visually-hidden">{ "Schedules" }</caption>
                    <thead><tr>
                        <th scope="col">{ "Name" }</th>
                        <th scope="col">{ "When" }</th>
                        <th scope="col">{ "Environment" }</th>
                        <th scope="col">{ "Tests" }</th>
                        <th scope="col">{ "Next fire" }</th>
                        <th scope="col">{ "Last run" }</th>
                        <th scope="col"><span class="visually-hidden">{ "Actions" }</span></th>
                    </tr></thead>
                    <tbody>{ for list.iter().map(row) }</tbody>
                </table>
            </div>
        },
        (None, Some(why)) => {
            html! { <p class="error" role="alert">{ why.message().to_string() }</p> }
        }
        (None, None) => html! { <p class="loading">{ "Loading schedules…" }</p> },
    };
    let heading = match draft.editing {
        Some(id) => format!("Edit schedule {id}"),
        None => "New schedule".to_string(),
    };
    html! {
        <section class="page schedules-page">
            <div class="page-head"><h1>{ "Schedules" }</h1></div>
            { list }
            <form class="schedule-form card" onsubmit={submit}>
                <h2>{ heading }</h2>
                <label>{ "Name" }
                    <input name="name" required=true value={draft.name.clone()} oninput={text_input(|d| &mut d.name)} />
                </label>
                { field_error("name") }
                <label>{ "Cron (minute hour day-of-month month day-of-week)" }
                    <input name="cron" required=true value={draft.cron.clone()} oninput={text_input(|d| &mut d.cron)} />
                </label>
                { field_error("cron") }
                <label>{ "Time zone (IANA, e.g. Europe/Berlin)" }
                    <input name="timezone" value={draft.timezone.clone()} oninput={text_input(|d| &mut d.timezone)} />
                </label>
                { field_error("timezone") }
                <label>{ "Environment id, or a label for any free one" }
                    <input name="target" required=true value={draft.target.clone()} oninput={text_input(|d| &mut d.target)} />
                </label>
                { field_error("environment_id") }
                { field_error("environment_label") }
                <label>{ "Test paths (one a line)" }
                    <textarea name="paths" rows="3" value={draft.paths.clone()}
                        oninput={{
                            let draft = draft.clone();
                            Callback::from(move |e: InputEvent| {
                                let mut next = (*draft).clone();
                                next.paths = e.target_unchecked_into::<web_sys::HtmlTextAreaElement>().value();
                                draft.set(next);
                            })
                        }} />
                </label>
                { field_error("paths") }
                <label class="check">
                    <input type="checkbox" name="enabled" checked={draft.enabled} onchange={on_enabled} />
                    { "Enabled" }
                </label>
                if let Some(why) = &*error {
                    <FormError error={why.clone()}
                        known={&["name", "cron", "timezone", "environment_id", "environment_label", "paths"][..]} />
                }
                <div class="actions">
                    <button type="submit" class="button primary">
                        { if draft.editing.is_some() { "Save schedule" } else { "Add schedule" } }
                    </button>
                    if draft.editing.is_some() {
                        <button type="button" class="button" onclick={cancel_edit}>{ "Cancel" }</button>
                    }
                </div>
            </form>
        </section>
    }
}
