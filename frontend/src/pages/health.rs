//! The environments ranked by health over the last week, least healthy
//! first: the score, whether it is suspect, and why.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::api;
use crate::app::Route;
use crate::components::health_summary::{details, score_badges};
use crate::health;
use crate::hooks::use_polling::use_polling;

/// Health moves slowly and costs the service a query over many runs.
const POLL_MS: u32 = 30_000;
const DAYS: u32 = 7;

#[component]
pub fn HealthPage() -> Html {
    let ranking = use_polling(DAYS, Some(POLL_MS), api::insights::environment_health);
    let body = match (ranking.data(), ranking.error()) {
        (Some(list), _) => {
            // Environments without runs say nothing; they are counted.
            let (ran, idle): (Vec<_>, Vec<_>) = list.iter().partition(|h| h.runs > 0);
            html! {
                <>
                    if ran.is_empty() {
                        <p class="empty">{ "No environment finished a run in the last 7 days." }</p>
                    } else {
                        <div class="table-wrap">
                            <table class="responsive health-ranking">
                                <thead>
                                    <tr>
                                        <th scope="col">{ "Environment" }</th>
                                        <th scope="col">{ "Health" }</th>
                                        <th scope="col">{ "Runs" }</th>
                                        <th scope="col">{ "Failed" }</th>
                                        <th scope="col">{ "Why" }</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    { for ran.into_iter().map(|h| { let id = h.environment_id; html! {
                                        <tr key={id} data-environment-id={id.to_string()} data-suspect={h.suspect.to_string()}>
                                            <td data-label="Environment">
                                                <Link<Route> to={Route::Environment { id }}>{ format!("Environment {id}") }</Link<Route>>
                                            </td>
                                            <td data-label="Health">{ score_badges(h) }</td>
                                            <td data-label="Runs">{ h.runs }</td>
                                            <td data-label="Failed">{ format!("{} ({})", h.failed_runs, health::percent(h.failure_rate)) }</td>
                                            <td data-label="Why">{ details(h) }</td>
                                        </tr>
                                    } }) }
                                </tbody>
                            </table>
                        </div>
                    }
                    if !idle.is_empty() {
                        <p class="hint">{ format!("{} environments finished no run in the last 7 days.", idle.len()) }</p>
                    }
                </>
            }
        }
        (None, Some(error)) => html! {
            <p class="error" role="alert">{ format!("The health could not be read: {}", error.message()) }</p>
        },
        (None, None) => {
            html! { <p class="loading">{ "Loading the health of the environments…" }</p> }
        }
    };
    html! {
        <section class="page health-page">
            <div class="page-head"><h1>{ "Environment health" }</h1></div>
            <p class="hint">
                { "Least healthy first, over the last 7 days. An environment is suspect when most of its failures are tests that pass on other environments and fail on no other, or when its last 5 runs failed while another environment's latest run succeeded." }
            </p>
            { body }
        </section>
    }
}
