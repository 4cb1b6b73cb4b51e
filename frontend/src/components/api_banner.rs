//! The banner shown while the API cannot be reached. While it shows, it
//! asks the health endpoint every two seconds, so it also goes away on
//! pages that have stopped polling.

use gloo_timers::callback::Interval;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::api;
use crate::hooks::use_connectivity::{use_connectivity_reporter, Connectivity};

const RETRY_MS: u32 = 2000;

#[component]
pub fn ApiBanner() -> Html {
    let state = use_context::<UseReducerHandle<Connectivity>>();
    let reporter = use_connectivity_reporter();
    let problem = state.as_ref().and_then(|state| state.problem.clone());
    let down = problem.is_some();

    use_effect_with(down, move |&down| {
        let interval = down.then(|| {
            Interval::new(RETRY_MS, move || {
                let reporter = reporter.clone();
                spawn_local(async move {
                    let result = api::service::health().await;
                    if let Some(reporter) = reporter {
                        reporter.report(&result);
                    }
                });
            })
        });
        move || drop(interval)
    });

    match problem {
        Some(why) => html! {
            <div class="api-banner" role="alert">
                <strong>{ "The API cannot be reached" }</strong>
                { format!(" ({why}). Retrying; this page catches up by itself once it is back.") }
            </div>
        },
        None => html! {},
    }
}
