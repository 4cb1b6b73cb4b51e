//! Sharing an environment: who has it now and who waits, reserving it
//! (now, or as the next in line), extending and releasing reservations
//! and holds, and taking it out of rotation for maintenance.

use shared::{
    Environment, EnvironmentState, Reservation, ReservationKind, ReservationState, ReservationWhen,
};
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use super::sharing_state::{Action, Request, Sharing, Task, Text};
use crate::api::{self, ApiError};
use crate::app::Route;
use crate::components::field::{error_id, Field};
use crate::components::form_error::FormError;
use crate::format;
use crate::hooks::use_polling::use_polling;
use crate::hooks::use_stored_username::{remember_username, use_stored_username};
use crate::pages::board::model::shows_free_at;

const RESERVE_FIELDS: &[&str] = &["owner", "minutes", "reason", "when"];
const MAINTENANCE_FIELDS: &[&str] = &["reason", "until"];
const CHANGE_FIELDS: &[&str] = &["minutes"];

#[derive(Properties, PartialEq)]
pub struct SharingProps {
    pub environment: Environment,
    /// Asks for the environment again, once a change went through.
    pub on_changed: Callback<()>,
}

fn hm(at: Option<&chrono::DateTime<chrono::Utc>>) -> String {
    at.map(format::local_hm).unwrap_or_else(|| "?".into())
}

/// A refusal as people read it: times in their own time, and without the
/// API's own words for the way out (the form offers it).
fn readable(mut error: ApiError) -> ApiError {
    let message = format::local_reason(error.message()).replace(" (\"when\": \"next\")", "");
    error.body.error.message = message;
    error
}

/// Sends a request; answers what it did, in words.
async fn send(environment_id: i32, request: Request) -> Result<String, ApiError> {
    perform(environment_id, request).await.map_err(readable)
}

async fn perform(environment_id: i32, request: Request) -> Result<String, ApiError> {
    Ok(match request {
        Request::Reserve(body) => {
            let reservation = api::reservations::reserve(environment_id, &body).await?;
            remember_username(&reservation.owner);
            match reservation.state {
                ReservationState::Active => format!(
                    "Reserved for {} until {}.",
                    reservation.owner,
                    hm(reservation.expires_at.as_ref())
                ),
                _ => format!(
                    "In line as #{}; it should start at ~{}.",
                    reservation.queue_position.unwrap_or(1),
                    hm(reservation.starts_at.as_ref())
                ),
            }
        }
        Request::Extend { id, minutes } => {
            let reservation = api::reservations::extend(id, minutes).await?;
            format!("Extended until {}.", hm(reservation.expires_at.as_ref()))
        }
        Request::Release(id) => {
            api::reservations::release(id).await?;
            "Released.".to_string()
        }
        Request::StartMaintenance(body) => {
            let environment = api::reservations::start_maintenance(environment_id, &body).await?;
            if environment.state == EnvironmentState::Draining {
                "Maintenance started: it goes offline once its run ends.".to_string()
            } else {
                "Maintenance started: it is offline.".to_string()
            }
        }
        Request::EndMaintenance => {
            api::reservations::end_maintenance(environment_id).await?;
            "Maintenance ended: it is back in rotation.".to_string()
        }
    })
}

/// Who has the environment now, and what waits for it.
fn now_line(environment: &Environment) -> Html {
    let run_link = |id: i64| html! { <Link<Route> to={Route::Run { id }}>{ format!("run #{id}") }</Link<Route>> };
    let state = match (
        &environment.maintenance,
        environment.current_run_id,
        &environment.hold,
    ) {
        (Some(m), run, _) => html! {
            <>
                <strong>{ if run.is_some() { "Draining for maintenance" } else { "Offline for maintenance" } }</strong>
                { format!(" since {}", format::local_hm(&m.since)) }
                { match &m.until { Some(until) => format!(", until {}", format::local_hm(until)), None => ", until someone ends it".to_string() } }
                { format!(": {}.", m.reason) }
                if let Some(id) = run {
                    { " Waiting for " }{ run_link(id) }{ " to end." }
                }
            </>
        },
        (None, Some(id), hold) => html! {
            <>
                <strong>{ "Busy" }</strong>{ " with " }{ run_link(id) }
                if let Some(hold) = hold {
                    { format!(", held for {} until {}", hold.owner, format::local_hm(&hold.until)) }
                }
                { "." }
            </>
        },
        (None, None, Some(hold)) => html! {
            <>
                <strong>{ format!("Held by {}", hold.owner) }</strong>
                { format!(" until {}", format::local_hm(&hold.until)) }
                if !hold.reason.is_empty() { { format!(": {}", hold.reason) } }
                { ". Only their runs start." }
            </>
        },
        (None, None, None) => html! { <strong>{ "Free." }</strong> },
    };
    let mut waiting = Vec::new();
    if environment.queued > 0 {
        waiting.push(format::count(
            environment.queued,
            "run queued",
            "runs queued",
        ));
    }
    if environment.reservations_waiting > 0 {
        waiting.push(format::count(
            environment.reservations_waiting,
            "reservation waiting",
            "reservations waiting",
        ));
    }
    let free = environment
        .estimated_free_at
        .filter(|_| shows_free_at(environment));
    html! {
        <p class="sharing-now" data-state={environment.state.as_str()}>
            { state }
            if !waiting.is_empty() { { format!(" {}.", waiting.join(", ")) } }
            if let Some(at) = free { { format!(" Free at ~{}.", format::local_hm(&at)) } }
        </p>
    }
}

/// One reservation in words.
fn describe(reservation: &Reservation) -> String {
    let what = match (reservation.kind, reservation.run_id) {
        (ReservationKind::Hold, Some(run)) => format!("hold after run #{run}"),
        (ReservationKind::Hold, None) => "hold".to_string(),
        (ReservationKind::Reservation, _) => format!("{} min", reservation.minutes),
    };
    let reason = if reservation.reason.is_empty() {
        String::new()
    } else {
        format!(": {}", reservation.reason)
    };
    match reservation.state {
        ReservationState::Active => format!(
            "{} holds it until {} ({what}){reason}",
            reservation.owner,
            hm(reservation.expires_at.as_ref())
        ),
        ReservationState::Waiting => format!(
            "#{} in line: {} ({what}), from ~{}{reason}",
            reservation.queue_position.unwrap_or(1),
            reservation.owner,
            hm(reservation.starts_at.as_ref())
        ),
        ReservationState::Ended => format!(
            "{} ({what}), {}–{}, {}",
            reservation.owner,
            hm(reservation.starts_at.as_ref()),
            hm(reservation.ended_at.as_ref()),
            reservation.end_reason.as_deref().unwrap_or("ended")
        ),
    }
}

/// A text input's new value, as an action.
fn edit(form: &UseReducerDispatcher<Sharing>, text: Text) -> Callback<InputEvent> {
    form.to_callback().reform(move |event: InputEvent| {
        Action::Edit(
            text,
            event.target_unchecked_into::<HtmlInputElement>().value(),
        )
    })
}

/// `aria-invalid` and `aria-describedby` of a control.
fn invalid(problem: &Option<String>, id: &str) -> (Option<&'static str>, Option<String>) {
    (
        problem.is_some().then_some("true"),
        problem.is_some().then(|| error_id(id)),
    )
}

/// One labelled input of the sharing forms.
struct Input {
    task: Task,
    text: Text,
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    hint: Option<&'static str>,
}

/// An input with its label, hint and complaint: a plain function, so the
/// wasm holds one copy for all of them.
fn text_input(form: &Sharing, dispatcher: &UseReducerDispatcher<Sharing>, input: Input) -> Html {
    let problem = form.problem(input.task, input.text.field().1);
    let (invalid, described) = invalid(&problem, input.id);
    html! {
        <Field id={input.id} label={input.label} error={problem} hint={input.hint.map(AttrValue::Static)}>
            <input id={input.id} type={input.kind} value={form.value(input.text).to_string()}
                inputmode={(input.kind == "number").then_some("numeric")}
                oninput={edit(dispatcher, input.text)}
                aria-invalid={invalid} aria-describedby={described} />
        </Field>
    }
}

/// The answer to the last request of `task`: what it did, or why not.
fn outcome(form: &Sharing, task: Task, known: &'static [&'static str], hint: Option<&str>) -> Html {
    html! {
        <>
            if let Some(error) = form.refusal_of(task).filter(|e| known.iter().all(|f| e.field(f).is_none()) || !e.other_fields(known).is_empty()) {
                <FormError error={error.clone()} {known} />
                if let Some(hint) = hint.filter(|_| error.status == 409) {
                    <p class="hint">{ hint.to_string() }</p>
                }
            }
            // A released reservation leaves the list: what happened to it
            // is said under the list instead.
            if let Some(done) = form.done_of(task).filter(|_| !matches!(task, Task::Change(_))) {
                <p class="saved" role="status">{ done.to_string() }</p>
            }
        </>
    }
}

#[component]
pub fn SharingPanel(props: &SharingProps) -> Html {
    let environment = &props.environment;
    let id = environment.id;
    let username = use_stored_username();
    let form = use_reducer(|| Sharing::new((*username).clone()));
    // Set and cleared outside the render cycle: a second click before the
    // buttons are disabled finds it taken.
    let in_flight = use_mut_ref(|| false);
    // Asked again whenever the environment's answer changes, and after
    // each change made here.
    let reservations = use_polling(environment.clone(), None, |environment: Environment| {
        api::reservations::of_environment(environment.id)
    });

    let perform = {
        let form = form.dispatcher();
        let refresh = reservations.refresh_callback();
        let on_changed = props.on_changed.clone();
        Callback::from(move |request: Result<Request, (Task, ApiError)>| {
            let request = match request {
                Ok(request) => request,
                Err((task, why)) => return form.dispatch(Action::Refused(task, why)),
            };
            if std::mem::replace(&mut *in_flight.borrow_mut(), true) {
                return;
            }
            let task = request.task();
            form.dispatch(Action::Sending(task));
            let (form, in_flight, refresh, on_changed) = (
                form.clone(),
                in_flight.clone(),
                refresh.clone(),
                on_changed.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                let result = send(id, request).await;
                *in_flight.borrow_mut() = false;
                form.dispatch(match result {
                    Ok(what) => Action::Done(task, what),
                    Err(why) => Action::Refused(task, why),
                });
                refresh.emit(());
                on_changed.emit(());
            });
        })
    };

    let on_reserve = {
        let form = form.clone();
        let perform = perform.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            perform.emit(
                form.reservation()
                    .map(Request::Reserve)
                    .map_err(|e| (Task::Reserve, e)),
            );
        })
    };
    let on_maintenance = {
        let form = form.clone();
        let perform = perform.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let now = format::from_ms(format::now_ms()).unwrap_or_default();
            perform.emit(
                form.maintenance(now)
                    .map(Request::StartMaintenance)
                    .map_err(|e| (Task::Maintenance, e)),
            );
        })
    };
    let end_maintenance = perform.reform(|_: MouseEvent| Ok(Request::EndMaintenance));
    let extend = |reservation: i64| {
        let form = form.clone();
        perform.reform(move |_: MouseEvent| {
            form.extension()
                .map(|minutes| Request::Extend {
                    id: reservation,
                    minutes,
                })
                .map_err(|e| (Task::Change(reservation), e))
        })
    };
    let release =
        |reservation: i64| perform.reform(move |_: MouseEvent| Ok(Request::Release(reservation)));
    let when = |value: ReservationWhen| {
        form.dispatcher()
            .to_callback()
            .reform(move |_: Event| Action::When(value))
    };

    let busy = form.busy.is_some();
    let dispatcher = form.dispatcher();
    let list = reservations.data().cloned().unwrap_or_default();
    let (open, ended): (Vec<&Reservation>, Vec<&Reservation>) = list
        .iter()
        .partition(|r| r.state != ReservationState::Ended);

    let row = |reservation: &Reservation| {
        let rid = reservation.id;
        let task = Task::Change(rid);
        let extend_problem = form.problem(task, "minutes");
        let extend_id = format!("extend-{rid}");
        let (extend_invalid, extend_described) = invalid(&extend_problem, &extend_id);
        html! {
            <li key={rid} class={classes!("reservation", reservation.state.as_str())} data-reservation-id={rid.to_string()}>
                <span class="reservation-text">{ describe(reservation) }</span>
                <span class="reservation-actions">
                    if reservation.state == ReservationState::Active {
                        <label for={extend_id.clone()} class="visually-hidden">{ "Minutes to add" }</label>
                        <input id={extend_id.clone()} class="minutes" type="number" min="1" max="480" inputmode="numeric"
                            value={form.extend_minutes.clone()} oninput={edit(&dispatcher, Text::ExtendMinutes)}
                            aria-invalid={extend_invalid} aria-describedby={extend_described} />
                        <button type="button" onclick={extend(rid)} disabled={busy}>{ "Extend" }</button>
                        <button type="button" class="danger" onclick={release(rid)} disabled={busy}>{ "Release" }</button>
                    } else {
                        <button type="button" class="danger" onclick={release(rid)} disabled={busy}>{ "Cancel reservation" }</button>
                    }
                </span>
                if let Some(why) = &extend_problem {
                    <p class="field-error" id={error_id(&extend_id)} role="alert">{ format!("Minutes to add {why}") }</p>
                }
                { outcome(&form, task, CHANGE_FIELDS, None) }
            </li>
        }
    };

    let field = |task, text, id, label, kind, hint| {
        text_input(
            &form,
            &dispatcher,
            Input {
                task,
                text,
                id,
                label,
                kind,
                hint,
            },
        )
    };
    html! {
        <section class="sharing" aria-labelledby="sharing-title">
            <h2 id="sharing-title">{ "Sharing" }</h2>
            { now_line(environment) }
            if !open.is_empty() {
                <ul class="reservations" aria-label="Reservations and holds">
                    { for open.iter().map(|r| row(r)) }
                </ul>
            }
            if let Some((Task::Change(_), done)) = &form.done {
                <p class="saved" role="status">{ done.clone() }</p>
            }
            if !ended.is_empty() {
                <details class="ended">
                    <summary>{ format!("Ended recently ({})", ended.len()) }</summary>
                    <ul>{ for ended.iter().map(|r| html! { <li key={r.id}>{ describe(r) }</li> }) }</ul>
                </details>
            }
            if let Some(error) = reservations.error().filter(|e| !e.is_unreachable()) {
                <p class="error" role="alert">{ format!("The reservations could not be read: {}", error.message()) }</p>
            }
            <div class="sharing-forms">
                <form class="reserve" onsubmit={on_reserve} novalidate=true aria-label="Reserve this environment">
                    <h3>{ "Reserve" }</h3>
                    { field(Task::Reserve, Text::Owner, "res-owner", "Your name", "text", None) }
                    <div class="row compact">
                        { field(Task::Reserve, Text::Minutes, "res-minutes", "Minutes (1 to 480)", "number", None) }
                        { field(Task::Reserve, Text::Reason, "res-reason", "Reason (optional)", "text",
                            Some("What for, for those waiting.")) }
                    </div>
                    <fieldset class="when">
                        <legend>{ "When" }</legend>
                        <label>
                            <input type="radio" name="when" checked={form.when == ReservationWhen::Now}
                                onchange={when(ReservationWhen::Now)} />
                            { " Now: only while it is free and nobody waits" }
                        </label>
                        <label>
                            <input type="radio" name="when" checked={form.when == ReservationWhen::Next}
                                onchange={when(ReservationWhen::Next)} />
                            { " Next in line: after the runs queued so far" }
                        </label>
                    </fieldset>
                    { outcome(&form, Task::Reserve, RESERVE_FIELDS,
                        (form.when == ReservationWhen::Now).then_some("Choose “Next in line” to wait for your turn.")) }
                    <div class="actions">
                        <button type="submit" class="primary" disabled={busy}>
                            { if form.busy == Some(Task::Reserve) { "Reserving…" } else { "Reserve" } }
                        </button>
                    </div>
                </form>
                <form class="maintenance" onsubmit={on_maintenance} novalidate=true aria-label="Maintenance">
                    <h3>{ "Maintenance" }</h3>
                    if environment.maintenance.is_some() {
                        <p class="hint">{ "Queued runs wait, and say why, until it ends." }</p>
                        { outcome(&form, Task::Maintenance, MAINTENANCE_FIELDS, None) }
                        <div class="actions">
                            <button type="button" class="primary" onclick={end_maintenance} disabled={busy}>
                                { "End maintenance" }
                            </button>
                        </div>
                    } else {
                        <p class="hint">{ "Takes it out of rotation: a running run finishes first (draining), then it is offline. Queued runs wait." }</p>
                        { field(Task::Maintenance, Text::MaintenanceReason, "mnt-reason", "Reason", "text", None) }
                        { field(Task::Maintenance, Text::MaintenanceUntil, "mnt-until", "Until (optional)",
                            "datetime-local", Some("Your local time. Empty: until someone ends it.")) }
                        { outcome(&form, Task::Maintenance, MAINTENANCE_FIELDS, None) }
                        <div class="actions">
                            <button type="submit" class="danger" disabled={busy}>{ "Start maintenance" }</button>
                        </div>
                    }
                </form>
            </div>
        </section>
    }
}
