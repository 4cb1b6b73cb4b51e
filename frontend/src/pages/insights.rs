//! Which tests are flaky, failing or slow over the last days. The window
//! lives in the URL (`?days=7`), so a link reproduces the view.

use serde::Serialize;
use shared::{FailingTest, FlakyTest, SlowTest};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api;
use crate::app::Route;
use crate::format;
use crate::hooks::use_polling::use_polling;
use crate::query;

/// The windows the picker offers; the URL may name any other the service
/// accepts.
const WINDOWS: [(u32, &str); 3] = [(1, "1 day"), (7, "7 days"), (30, "30 days")];
const DEFAULT_DAYS: u32 = 7;
const MAX_DAYS: u32 = 366;
/// Run ids shown before the rest fold away.
const SHOWN_RUNS: usize = 10;
/// Insights move slowly and cost the service a query over many runs.
const POLL_MS: u32 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct WindowQuery {
    days: u32,
}

/// The window of the URL's query; anything unreadable means the default.
fn days_from(location: Option<&Location>) -> u32 {
    let raw = location.map(Location::query_str).unwrap_or_default();
    parse_days(query::param(raw, "days").as_deref())
}

fn parse_days(value: Option<&str>) -> u32 {
    value
        .and_then(|value| value.trim().parse().ok())
        .filter(|days| (1..=MAX_DAYS).contains(days))
        .unwrap_or(DEFAULT_DAYS)
}

fn window_name(days: u32) -> String {
    if days == 1 {
        "day".to_string()
    } else {
        format!("{days} days")
    }
}

/// The runs behind a figure, newest first, each a link; beyond the first
/// few they fold away.
fn run_ids(ids: &[i64]) -> Html {
    let link = |id: &i64| {
        let id = *id;
        html! { <Link<Route> to={Route::Run { id }}>{ format!("#{id}") }</Link<Route>> }
    };
    let (shown, rest) = ids.split_at(ids.len().min(SHOWN_RUNS));
    html! {
        <span class="run-ids">
            { for shown.iter().map(link) }
            if !rest.is_empty() {
                <details>
                    <summary>{ format!("{} more", rest.len()) }</summary>
                    { for rest.iter().map(link) }
                </details>
            }
        </span>
    }
}

/// One test of a table: its node id, its figure and the runs behind it.
struct Row<'a> {
    nodeid: &'a str,
    figure: Html,
    run_ids: &'a [i64],
}

/// A table of tests with one figure each, or `empty` when there are none.
/// One function for the three tables keeps the wasm small.
fn table(caption: &str, figure: &str, rows: Vec<Row>, empty: String) -> Html {
    if rows.is_empty() {
        return html! { <p class="empty">{ empty }</p> };
    }
    html! {
        <div class="table-wrap">
            <table class="insights responsive">
                <caption class="visually-hidden">{ caption.to_string() }</caption>
                <thead>
                    <tr>
                        <th scope="col" class="col-test">{ "Test" }</th>
                        <th scope="col" class="col-figure">{ figure.to_string() }</th>
                        <th scope="col" class="col-runs">{ "Runs" }</th>
                    </tr>
                </thead>
                <tbody>
                    { for rows.into_iter().map(|row| html! {
                        <tr key={row.nodeid} data-nodeid={row.nodeid.to_string()}>
                            <td data-label="Test"><code class="nodeid">{ row.nodeid.to_string() }</code></td>
                            <td data-label={figure.to_string()} class="figure">{ row.figure }</td>
                            <td data-label="Runs">{ run_ids(row.run_ids) }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        </div>
    }
}

fn flaky_rows(tests: &[FlakyTest]) -> Vec<Row<'_>> {
    tests
        .iter()
        .map(|test| Row {
            nodeid: &test.nodeid,
            figure: html! {
                <>
                    <span class="flips">{ test.flips }</span>
                    if let Some(note) = crate::health::suspect_note(test) {
                        <span class="suspect-note">{ note }</span>
                    }
                    if let Some(at) = &test.last_flip_at {
                        <span class="last-flip">
                            { "last " }
                            <time datetime={format::utc_time(at)} title={format::utc_time(at)}>{ format::local_time(at) }</time>
                        </span>
                    }
                </>
            },
            run_ids: &test.run_ids,
        })
        .collect()
}

fn failing_rows(tests: &[FailingTest]) -> Vec<Row<'_>> {
    tests
        .iter()
        .map(|test| Row {
            nodeid: &test.nodeid,
            figure: html! { <span class="failures">{ test.failures }</span> },
            run_ids: &test.run_ids,
        })
        .collect()
}

fn slow_rows(tests: &[SlowTest]) -> Vec<Row<'_>> {
    tests
        .iter()
        .map(|test| Row {
            nodeid: &test.nodeid,
            figure: html! { format::duration_ms(test.median_ms) },
            run_ids: &test.run_ids,
        })
        .collect()
}

#[component]
pub fn InsightsPage() -> Html {
    let location = use_location();
    let navigator = use_navigator();
    let days = days_from(location.as_ref());
    let insights = use_polling(days, Some(POLL_MS), api::insights::insights);
    let window = window_name(days);

    let pick = |wanted: u32| {
        let navigator = navigator.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(navigator) = &navigator {
                let _ = navigator.push_with_query(&Route::Insights, &WindowQuery { days: wanted });
            }
        })
    };

    let body = match (insights.data(), insights.error()) {
        (Some(insights), _) => html! {
            <>
                <section class="insight" aria-labelledby="flaky-title">
                    <h2 id="flaky-title">{ format!("Flaky ({})", insights.flaky.len()) }</h2>
                    <p class="hint">{ "Passed and failed by turns on the same environment; flips count the changes between consecutive runs. Flips on suspect environments (see Health) are not counted: the environment explains them." }</p>
                    { table("Flaky tests", "Flips", flaky_rows(&insights.flaky),
                        format!("No test flipped between passed and failed in the last {window}.")) }
                </section>
                <section class="insight" aria-labelledby="failing-title">
                    <h2 id="failing-title">{ format!("Failing ({})", insights.failing.len()) }</h2>
                    <p class="hint">{ "The tests that failed or errored most often." }</p>
                    { table("Failing tests", "Failures", failing_rows(&insights.failing),
                        format!("No test failed in the last {window}.")) }
                </section>
                <section class="insight" aria-labelledby="slowest-title">
                    <h2 id="slowest-title">{ format!("Slowest ({})", insights.slowest.len()) }</h2>
                    <p class="hint">{ "By their median duration." }</p>
                    { table("Slowest tests", "Median", slow_rows(&insights.slowest),
                        format!("No test ran in the last {window}.")) }
                </section>
            </>
        },
        (None, Some(error)) => html! {
            <p class="error" role="alert">{ format!("The insights could not be read: {}", error.message()) }</p>
        },
        (None, None) => html! { <p class="loading">{ "Loading insights…" }</p> },
    };

    html! {
        <section class="page insights-page">
            <div class="page-head">
                <h1>{ "Insights" }</h1>
                <div class="segmented" role="group" aria-label="Window">
                    { for WINDOWS.iter().map(|&(option, label)| html! {
                        <button type="button" aria-pressed={(option == days).to_string()}
                            onclick={pick(option)}>{ label }</button>
                    }) }
                </div>
            </div>
            <p class="hint">{ format!("Tests over the last {window}, from every finished run.") }</p>
            if let (Some(_), Some(error)) = (insights.data(), insights.error()) {
                if !error.is_unreachable() {
                    <p class="error" role="alert">{ format!("The insights could not be refreshed: {}", error.message()) }</p>
                }
            }
            { body }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn the_window_comes_from_the_url_or_is_a_week() {
        assert_eq!(parse_days(Some("30")), 30);
        assert_eq!(parse_days(Some(" 14 ")), 14);
        assert_eq!(parse_days(None), DEFAULT_DAYS);
        assert_eq!(parse_days(Some("0")), DEFAULT_DAYS);
        assert_eq!(parse_days(Some("400")), DEFAULT_DAYS);
        assert_eq!(parse_days(Some("week")), DEFAULT_DAYS);
    }

    #[wasm_bindgen_test]
    fn windows_read_naturally() {
        assert_eq!(window_name(1), "day");
        assert_eq!(window_name(30), "30 days");
    }
}
