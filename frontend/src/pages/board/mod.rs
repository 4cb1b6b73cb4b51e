//! The board: every environment id at a glance, live. Each tile says its
//! state (in colour and in words), who has it, its queue and when it
//! should be free; a label filter, kept in the URL (`?labels=eu,staging`),
//! narrows it down.

pub mod model;
mod tile;

use serde::Serialize;
use shared::{RunListQuery, RunStatus, MAX_ENVIRONMENT_ID};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;
use crate::hooks::use_polling::use_polling;
use crate::{api, query};
use tile::BoardTile;

#[derive(Serialize)]
struct LabelsQuery {
    labels: String,
}

/// The filter of the URL's query.
fn filter_from(location: Option<&Location>) -> Vec<String> {
    let raw = location.map(Location::query_str).unwrap_or_default();
    model::parse_filter(query::param(raw, "labels").as_deref())
}

#[component]
pub fn BoardPage() -> Html {
    let location = use_location();
    let navigator = use_navigator();
    let filter = filter_from(location.as_ref());
    let environments = use_polling((), Some(1000), |()| api::environments::list());
    // The users of the runs going now: at most one per environment.
    let running_query = RunListQuery {
        status: Some(RunStatus::Running),
        per_page: Some(i64::from(MAX_ENVIRONMENT_ID)),
        ..RunListQuery::default()
    };
    let running = use_polling(running_query, Some(1000), api::runs::list);
    // Health moves slowly and costs a query over many runs.
    let health = use_polling(7u32, Some(30_000), api::insights::environment_health);

    let apply = use_callback(navigator, |filter: Vec<String>, navigator| {
        if let Some(navigator) = navigator {
            if filter.is_empty() {
                navigator.push(&Route::Board);
            } else {
                let _ = navigator.push_with_query(
                    &Route::Board,
                    &LabelsQuery {
                        labels: filter.join(","),
                    },
                );
            }
        }
    });
    let toggle = |label: &str| {
        let next = model::toggle(&filter, label);
        let apply = apply.clone();
        Callback::from(move |_: MouseEvent| apply.emit(next.clone()))
    };

    let body = match (environments.data(), environments.error()) {
        (Some(list), _) => {
            let runs = running
                .data()
                .map(|page| page.items.as_slice())
                .unwrap_or_default();
            let mut tiles = model::tiles(list, runs, &filter);
            if let Some(ranking) = health.data() {
                model::with_health(&mut tiles, ranking);
            }
            let labels = model::all_labels(list);
            let clear = apply.reform(|_: MouseEvent| Vec::new());
            html! {
                <>
                    if !labels.is_empty() || !filter.is_empty() {
                        <div class="label-filter" role="group" aria-label="Filter by label">
                            <span class="hint">{ "Labels:" }</span>
                            { for labels.iter().chain(filter.iter().filter(|l| !labels.contains(l))).map(|label| html! {
                                <button type="button" class="label-toggle" key={label.clone()}
                                    aria-pressed={filter.contains(label).to_string()}
                                    onclick={toggle(label)}>{ label.clone() }</button>
                            }) }
                            if !filter.is_empty() {
                                <button type="button" class="link" onclick={clear}>{ "Show all" }</button>
                            }
                        </div>
                    }
                    <p class="board-legend" aria-live="polite">
                        { format!("{} shown: ", tiles.len()) }
                        { for model::counts(&tiles).into_iter().map(|(word, count)| html! {
                            <span class={classes!("legend-item", format!("legend-{}", word.replace(' ', "-")))}>
                                { format!("{count} {word}") }
                            </span>
                        }) }
                    </p>
                    if tiles.is_empty() {
                        <p class="empty">{ "No environment has all of these labels." }</p>
                    } else {
                        <ul class="board" aria-label="Environments">
                            { for tiles.into_iter().map(|tile| { let id = tile.id; html! { <BoardTile key={id} {tile} /> } }) }
                        </ul>
                    }
                </>
            }
        }
        (None, Some(error)) => html! {
            <p class="error" role="alert">{ format!("The environments could not be listed: {}", error.message()) }</p>
        },
        (None, None) => html! { <p class="loading">{ "Loading the board…" }</p> },
    };

    html! {
        <section class="page board-page">
            <div class="page-head">
                <h1>{ "Board" }</h1>
                <Link<Route> to={Route::Environments} classes="button">{ "Environment list" }</Link<Route>>
            </div>
            { body }
        </section>
    }
}
