//! The home page: every run, newest first, live. Filters and page live in
//! the URL, so a link reproduces the view.

use shared::{Run, RunListQuery, RunStatus};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{self, ApiError};
use crate::app::Route;
use crate::components::pagination::{pagination, Noun};
use crate::components::run_trend::run_trend_chart;
use crate::components::status_badge::status_badge;
use crate::format;
use crate::hooks::use_polling::use_polling;
use crate::hooks::use_session::use_session;
use crate::query;
use crate::trend::{RunTrend, TREND_RUNS};

/// How often the chart's own list is asked for, when the table shows
/// something else: the chart need not be as live as the table.
const TREND_POLL_MS: u32 = 5000;

/// The filters of the URL's query; anything unreadable is ignored.
fn filters_from(location: Option<&Location>) -> RunListQuery {
    let raw = location.map(Location::query_str).unwrap_or_default();
    let text = |key: &str| {
        query::param(raw, key)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
    };
    RunListQuery {
        status: text("status").and_then(|s| s.parse().ok()),
        username: text("username"),
        environment_id: text("environment_id").and_then(|s| s.parse().ok()),
        page: text("page").and_then(|s| s.parse().ok()).filter(|p| *p > 1),
        per_page: text("per_page").and_then(|s| s.parse().ok()),
    }
}

/// Whether the table's answer already holds the latest runs of all, so
/// the chart can be drawn from it without a request of its own.
fn shows_latest_runs(filters: &RunListQuery) -> bool {
    filters.status.is_none()
        && filters.username.is_none()
        && filters.environment_id.is_none()
        && filters.page.is_none()
        && filters
            .per_page
            .is_none_or(|per_page| per_page >= TREND_RUNS as i64)
}

#[derive(Properties, PartialEq)]
struct RunRowProps {
    run: Run,
}

/// One run; it re-renders only when that run changed.
#[component]
fn RunRow(props: &RunRowProps) -> Html {
    let run = &props.run;
    let navigator = use_navigator();
    let id = run.id;
    let onclick = Callback::from(move |event: MouseEvent| {
        // The link in the first cell handles its own clicks.
        if event.default_prevented() {
            return;
        }
        if let Some(navigator) = &navigator {
            navigator.push(&Route::Run { id });
        }
    });
    let duration = match (run.duration_ms, run.status) {
        (Some(ms), _) => format::duration_ms(ms),
        (None, RunStatus::Running) => "running".to_string(),
        _ => "—".to_string(),
    };
    html! {
        <tr class="clickable" {onclick} data-run-id={run.id.to_string()}>
            <td data-label="Run"><Link<Route> to={Route::Run { id }}>{ format!("#{id}") }</Link<Route>></td>
            <td data-label="Requested by">{ run.username.clone() }</td>
            <td data-label="Created">
                <time datetime={format::utc_time(&run.created_at)} title={format::utc_time(&run.created_at)}>
                    { format::local_time(&run.created_at) }
                </time>
            </td>
            <td data-label="Environment">{ match (run.environment_id, &run.environment_label) {
                (Some(id), _) => id.to_string(),
                (None, Some(label)) => format!("any {label}"),
                (None, None) => String::new(),
            } }</td>
            <td data-label="Tests" class="paths" title={run.paths.join("\n")}>{ format::paths_summary(&run.paths) }</td>
            <td data-label="Status">
                { status_badge(run, true) }
                if run.pinned {
                    <span class="run-note" title="Kept whatever the retention">{ " pinned" }</span>
                } else if run.details_removed_at.is_some() {
                    <span class="run-note" title="Its log, per-test results and artifacts were removed by retention">{ " details removed" }</span>
                }
            </td>
            <td data-label="Duration">{ duration }</td>
        </tr>
    }
}

#[derive(Properties, PartialEq)]
struct FilterProps {
    filters: RunListQuery,
    on_apply: Callback<RunListQuery>,
}

/// The filter form: status applies at once, the text fields on submit.
#[component]
fn Filters(props: &FilterProps) -> Html {
    let username = use_state(|| props.filters.username.clone().unwrap_or_default());
    let environment = use_state(|| {
        props
            .filters
            .environment_id
            .map(|id| id.to_string())
            .unwrap_or_default()
    });
    // Follow the URL when it changes by other means (back button, links).
    {
        let username = username.clone();
        let environment = environment.clone();
        use_effect_with(props.filters.clone(), move |filters| {
            username.set(filters.username.clone().unwrap_or_default());
            environment.set(
                filters
                    .environment_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            );
        });
    }
    let current = |props: &FilterProps, username: &str, environment: &str| RunListQuery {
        status: props.filters.status,
        username: Some(username.trim().to_string()).filter(|u| !u.is_empty()),
        environment_id: environment.trim().parse().ok(),
        page: None,
        per_page: props.filters.per_page,
    };
    let onsubmit = {
        let on_apply = props.on_apply.clone();
        let query = current(props, &username, &environment);
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            on_apply.emit(query.clone());
        })
    };
    let on_status = {
        let on_apply = props.on_apply.clone();
        let query = current(props, &username, &environment);
        Callback::from(move |event: Event| {
            let select: HtmlSelectElement = event.target_unchecked_into();
            on_apply.emit(RunListQuery {
                status: select.value().parse().ok(),
                ..query.clone()
            });
        })
    };
    let on_username = {
        let username = username.clone();
        Callback::from(move |event: InputEvent| {
            username.set(event.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_environment = {
        let environment = environment.clone();
        Callback::from(move |event: InputEvent| {
            environment.set(event.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let clear = {
        let on_apply = props.on_apply.clone();
        Callback::from(move |_: MouseEvent| on_apply.emit(RunListQuery::default()))
    };
    let filtered = props.filters.status.is_some()
        || props.filters.username.is_some()
        || props.filters.environment_id.is_some();
    html! {
        <form class="filters" {onsubmit} aria-label="Filter runs">
            <div class="field">
                <label for="filter-status">{ "Status" }</label>
                <select id="filter-status" onchange={on_status}>
                    <option value="" selected={props.filters.status.is_none()}>{ "any" }</option>
                    { for RunStatus::ALL.iter().map(|status| html! {
                        <option value={status.as_str()} selected={props.filters.status == Some(*status)}>
                            { status.as_str() }
                        </option>
                    }) }
                </select>
            </div>
            <div class="field">
                <label for="filter-username">{ "Requested by" }</label>
                <input id="filter-username" type="search" placeholder="anyone"
                    value={(*username).clone()} oninput={on_username} />
            </div>
            <div class="field">
                <label for="filter-environment">{ "Environment" }</label>
                <input id="filter-environment" type="number" min="1" max="100" placeholder="any"
                    inputmode="numeric" value={(*environment).clone()} oninput={on_environment} />
            </div>
            <div class="filter-actions">
                <button type="submit">{ "Filter" }</button>
                if filtered {
                    <button type="button" onclick={clear}>{ "Clear" }</button>
                }
            </div>
        </form>
    }
}

#[component]
pub fn RunsPage() -> Html {
    let location = use_location();
    let navigator = use_navigator();
    let chart_navigator = navigator.clone();
    let filters = filters_from(location.as_ref());
    let runs = use_polling(filters.clone(), Some(1000), api::runs::list);
    let may_run = use_session().may(shared::Role::Member);
    // The chart reads the table's answer when it holds the latest runs, and
    // polls them itself, less often, when it does not. (The same call as
    // the table's, so no more wasm; its one answer at the start goes
    // unused while the table shows the latest runs.)
    let own = !shows_latest_runs(&filters);
    let latest_query = RunListQuery {
        per_page: Some(TREND_RUNS as i64),
        ..RunListQuery::default()
    };
    let latest = use_polling(latest_query, own.then_some(TREND_POLL_MS), api::runs::list);
    let trend =
        if own { latest.data() } else { runs.data() }.map(|page| RunTrend::from_runs(&page.items));

    // Stable callbacks: the filter form and the pager re-render only when
    // their own inputs change, not on every poll.
    let apply = use_callback(navigator, |query: RunListQuery, navigator| {
        if let Some(navigator) = navigator {
            let pairs = api::runs::list_query_string(&query);
            // An empty query must drop the old one from the URL.
            let _ = if pairs.is_empty() {
                navigator.push(&Route::Runs);
                Ok(())
            } else {
                navigator.push_with_query(&Route::Runs, &query)
            };
        }
    });
    let on_page = use_callback(
        (apply.clone(), filters.clone()),
        |page: i64, (apply, filters)| {
            apply.emit(RunListQuery {
                page: Some(page).filter(|p| *p > 1),
                ..filters.clone()
            })
        },
    );

    let body = match (runs.data(), runs.error()) {
        (Some(page), _) if page.items.is_empty() => html! {
            <p class="empty">
                if filters == RunListQuery::default() {
                    { "No runs yet. " }<Link<Route> to={Route::NewRun}>{ "Start the first one" }</Link<Route>>{ "." }
                } else {
                    { "No run matches these filters." }
                }
            </p>
        },
        (Some(page), _) => html! {
            <>
                <div class="table-wrap">
                    <table class="runs responsive">
                        <caption class="visually-hidden">{ "Runs, newest first" }</caption>
                        <thead>
                            <tr>
                                <th scope="col" class="col-run">{ "Run" }</th>
                                <th scope="col" class="col-requested-by">{ "Requested by" }</th>
                                <th scope="col" class="col-created">{ "Created" }</th>
                                <th scope="col" class="col-env">{ "Env" }</th>
                                <th scope="col" class="col-tests">{ "Tests" }</th>
                                <th scope="col" class="col-status">{ "Status" }</th>
                                <th scope="col" class="col-duration">{ "Duration" }</th>
                            </tr>
                        </thead>
                        <tbody>
                            { for page.items.iter().map(|run| html! { <RunRow key={run.id} run={run.clone()} /> }) }
                        </tbody>
                    </table>
                </div>
                { pagination(page.page, page.per_page.max(1), page.total, &on_page,
                    Noun { one: "run", many: "runs" }) }
            </>
        },
        (None, Some(error)) => error_text(error),
        (None, None) => html! { <p class="loading">{ "Loading runs…" }</p> },
    };

    html! {
        <section class="page runs-page">
            <div class="page-head">
                <h1>{ "Runs" }</h1>
                if may_run {
                    <Link<Route> to={Route::NewRun} classes="button primary">{ "New run" }</Link<Route>>
                }
            </div>
            if let Some(trend) = &trend {
                { run_trend_chart(trend, &chart_navigator) }
            }
            <Filters filters={filters.clone()} on_apply={apply} />
            if let (Some(_), Some(error)) = (runs.data(), runs.error()) {
                if !error.is_unreachable() { { error_text(error) } }
            }
            { body }
        </section>
    }
}

fn error_text(error: &ApiError) -> Html {
    html! { <p class="error" role="alert">{ format!("The runs could not be listed: {}", error.message()) }</p> }
}
