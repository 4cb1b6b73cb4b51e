//! The environments: their state, current run and queue, live.

use shared::{Environment, EnvironmentState};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api;
use crate::app::Route;
use crate::format;
use crate::hooks::use_polling::use_polling;

#[derive(Properties, PartialEq)]
struct RowProps {
    environment: Environment,
}

#[component]
fn EnvironmentRow(props: &RowProps) -> Html {
    let environment = &props.environment;
    let state = environment.state.as_str();
    let timeout = environment
        .run_timeout_secs
        .map(|secs| format!("{secs} s"))
        .unwrap_or_else(|| "default".to_string());
    html! {
        <tr data-environment-id={environment.id.to_string()}>
            <td data-label="Id">{ environment.id }</td>
            <td data-label="Name">
                <Link<Route> to={Route::Environment { id: environment.id }}>{ environment.name.clone() }</Link<Route>>
                if !environment.description.is_empty() {
                    <div class="description">{ environment.description.clone() }</div>
                }
                if !environment.labels.is_empty() {
                    <div class="tile-labels">
                        { for environment.labels.iter().map(|l| html! { <span class="label">{ l.clone() }</span> }) }
                    </div>
                }
            </td>
            <td data-label="State">
                <span class={classes!("badge", format!("env-{state}"))}>{ format::environment_state(environment.state) }</span>
            </td>
            <td data-label="Current run">
                { match environment.current_run_id {
                    Some(id) => html! { <Link<Route> to={Route::Run { id }}>{ format!("#{id}") }</Link<Route>> },
                    None => html! { "—" },
                } }
            </td>
            <td data-label="Queued">{ environment.queued }</td>
            <td data-label="Variables">{ environment.variables.len() }</td>
            <td data-label="Time-out">{ timeout }</td>
            <td data-label="">
                <Link<Route> to={Route::Environment { id: environment.id }}
                    classes="button small">{ "Edit" }</Link<Route>>
            </td>
        </tr>
    }
}

#[component]
pub fn EnvironmentsPage() -> Html {
    let environments = use_polling((), Some(1000), |()| api::environments::list());
    let body = match (environments.data(), environments.error()) {
        (Some(list), _) => {
            let busy = list
                .iter()
                .filter(|e| e.state == EnvironmentState::Busy)
                .count();
            let queued: i64 = list.iter().map(|e| e.queued).sum();
            html! {
                <>
                    <p class="hint">{ format!("{} environments, {busy} busy, {queued} runs queued.", list.len()) }</p>
                    <div class="table-wrap">
                        <table class="environments responsive">
                            <caption class="visually-hidden">{ "Environments" }</caption>
                            <thead>
                                <tr>
                                    <th scope="col">{ "Id" }</th>
                                    <th scope="col">{ "Name" }</th>
                                    <th scope="col">{ "State" }</th>
                                    <th scope="col">{ "Current run" }</th>
                                    <th scope="col">{ "Queued" }</th>
                                    <th scope="col">{ "Variables" }</th>
                                    <th scope="col">{ "Time-out" }</th>
                                    <th scope="col"><span class="visually-hidden">{ "Actions" }</span></th>
                                </tr>
                            </thead>
                            <tbody>
                                { for list.iter().map(|e| html! { <EnvironmentRow key={e.id} environment={e.clone()} /> }) }
                            </tbody>
                        </table>
                    </div>
                </>
            }
        }
        (None, Some(error)) => html! {
            <p class="error" role="alert">{ format!("The environments could not be listed: {}", error.message()) }</p>
        },
        (None, None) => html! { <p class="loading">{ "Loading environments…" }</p> },
    };
    html! {
        <section class="page environments-page">
            <div class="page-head">
                <h1>{ "Environments" }</h1>
                <div class="actions">
                    <Link<Route> to={Route::Board} classes="button">{ "Board" }</Link<Route>>
                    <Link<Route> to={Route::NewEnvironment} classes="button primary">{ "New environment" }</Link<Route>>
                </div>
            </div>
            { body }
        </section>
    }
}
