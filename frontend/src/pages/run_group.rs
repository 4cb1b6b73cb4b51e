//! One run group: its shards (each a run on an environment of its pool),
//! and one result for all of them. Live until every shard is finished.

use shared::{RunGroup, RunStatus};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{self, ApiError};
use crate::app::Route;
use crate::components::progress::progress;
use crate::components::run_link::run_link;
use crate::components::status_badge::status_badge;
use crate::format;
use crate::hooks::use_polling::use_polling;

#[derive(Properties, PartialEq)]
pub struct RunGroupProps {
    pub id: i64,
}

/// The group's status as the runs' badges show theirs.
fn group_badge(group: &RunGroup) -> Html {
    let status = group.status;
    html! {
        <span class={classes!("badge", format!("status-{status}"))} data-status={status.as_str()}>
            { status.as_str() }
        </span>
    }
}

/// How far the shards are, in words: "2 of 4 shards finished".
pub fn shards_done(group: &RunGroup) -> String {
    let done = group
        .shard_runs
        .iter()
        .filter(|run| run.status.is_finished())
        .count();
    let all = group.shard_runs.len();
    let noun = if all == 1 { "shard" } else { "shards" };
    format!("{done} of {all} {noun} finished")
}

fn counts(group: &RunGroup) -> Html {
    let summary = &group.summary;
    let count = |label: &'static str, value: Option<i32>, class: &'static str| match value {
        Some(value) if value > 0 || matches!(label, "total" | "passed" | "failed") => html! {
            <li class={class}><span class="count-value">{ value }</span>{ " " }{ label }</li>
        },
        _ => html! {},
    };
    html! {
        <div class="summary-block">
            if group.status == RunStatus::Running {
                { progress(summary, false) }
            }
            <ul class="summary" aria-label="Summary">
                { count("total", summary.total, "total") }
                { count("passed", summary.passed, "passed") }
                { count("failed", summary.failed, "failed") }
                { count("errors", summary.errors, "errors") }
                { count("skipped", summary.skipped, "skipped") }
                { count("xfailed", summary.xfailed, "skipped") }
                { count("xpassed", summary.xpassed, "skipped") }
            </ul>
        </div>
    }
}

#[component]
pub fn RunGroupPage(props: &RunGroupProps) -> Html {
    let id = props.id;
    let navigator = use_navigator();
    let finished = use_state_eq(|| false);
    let group = use_polling(id, (!*finished).then_some(1000), api::run_groups::get_group);
    let now_finished = group.data().is_some_and(|g| g.status.is_finished());
    {
        let finished = finished.clone();
        use_effect_with(now_finished, move |&now| finished.set(now));
    }
    let cancel_error = use_state(|| None::<ApiError>);
    let cancelling = use_state(|| false);
    let on_cancel = {
        let (cancel_error, cancelling) = (cancel_error.clone(), cancelling.clone());
        let refresh = group.refresh_callback();
        Callback::from(move |_: MouseEvent| {
            if *cancelling {
                return;
            }
            cancelling.set(true);
            let (cancel_error, cancelling, refresh) =
                (cancel_error.clone(), cancelling.clone(), refresh.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let result = api::run_groups::cancel(id).await;
                cancelling.set(false);
                match result {
                    Ok(_) => {
                        cancel_error.set(None);
                        refresh.emit(());
                    }
                    Err(why) => cancel_error.set(Some(why)),
                }
            });
        })
    };

    let title = format!("Run group #{id}");
    let Some(data) = group.data() else {
        let body = match group.error() {
            Some(error) if error.status == 404 => html! {
                <>
                    <p class="error" role="alert">{ format!("There is no run group #{id}.") }</p>
                    <p><Link<Route> to={Route::Runs}>{ "Back to the runs" }</Link<Route>></p>
                </>
            },
            Some(error) => html! {
                <p class="error" role="alert">{ format!("The run group could not be read: {}", error.message()) }</p>
            },
            None => html! { <p class="loading">{ "Loading…" }</p> },
        };
        return html! { <section class="page"><h1>{ title }</h1>{ body }</section> };
    };

    html! {
        <section class="page run-group-page">
            <div class="page-head">
                <h1>{ title }</h1>
                { group_badge(data) }
                <div class="actions">
                    if !data.status.is_finished() {
                        <button type="button" class="danger" onclick={on_cancel} disabled={*cancelling}>
                            { if *cancelling { "Cancelling…" } else { "Cancel all shards" } }
                        </button>
                    }
                </div>
            </div>
            if let Some(error) = &*cancel_error {
                <p class="error" role="alert">{ error.message().to_string() }</p>
            }
            <dl class="facts">
                <dt>{ "Requested by" }</dt><dd>{ data.username.clone() }</dd>
                <dt>{ "Pool" }</dt><dd>{ format!("environments labelled {}", data.environment_label) }</dd>
                <dt>{ "Tests" }</dt>
                <dd><ul class="paths">{ for data.paths.iter().map(|p| html! { <li><code>{ p.clone() }</code></li> }) }</ul></dd>
                <dt>{ "Shards" }</dt>
                <dd>
                    { shards_done(data) }
                    if (data.shard_runs.len() as i32) < data.shards_requested {
                        { format!(" ({} asked for; there were fewer test files)", data.shards_requested) }
                    }
                </dd>
                <dt>{ "Created" }</dt><dd>{ format::local_time(&data.created_at) }</dd>
                <dt>{ "Duration" }</dt>
                <dd>{ data.duration_ms.map(format::duration_ms).unwrap_or_else(|| "—".into()) }</dd>
            </dl>
            { counts(data) }
            <div class="table-wrap">
                <table class="responsive shards">
                    <thead>
                        <tr>
                            <th scope="col">{ "Shard" }</th>
                            <th scope="col">{ "Run" }</th>
                            <th scope="col">{ "Status" }</th>
                            <th scope="col">{ "Environment" }</th>
                            <th scope="col">{ "Tests" }</th>
                            <th scope="col">{ "Duration" }</th>
                        </tr>
                    </thead>
                    <tbody>
                        { for data.shard_runs.iter().map(|run| html! {
                            <tr key={run.id}>
                                <td data-label="Shard">{ run.shard.map(|s| s.to_string()).unwrap_or_default() }</td>
                                <td data-label="Run">
                                    { run_link(&navigator, run.id, format!("Run #{}", run.id), classes!(), html! { format!("#{}", run.id) }) }
                                </td>
                                <td data-label="Status">{ status_badge(run, true) }</td>
                                <td data-label="Environment">
                                    { run.environment_id.map(|e| e.to_string()).unwrap_or_else(|| "waiting".into()) }
                                </td>
                                <td data-label="Tests">{ format::paths_summary(&run.paths) }</td>
                                <td data-label="Duration">
                                    { run.duration_ms.map(format::duration_ms).unwrap_or_else(|| "—".into()) }
                                </td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{Run, RunSummary};
    use wasm_bindgen_test::wasm_bindgen_test;

    fn shard(id: i64, status: RunStatus) -> Run {
        Run {
            id,
            username: "ann".into(),
            environment_id: None,
            environment_label: Some("staging".into()),
            paths: vec![],
            status,
            status_reason: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            exit_code: None,
            queue_position: None,
            summary: RunSummary::default(),
            rerun_of: None,
            hold_on_failure_minutes: None,
            estimated_start_at: None,
            run_group_id: Some(1),
            shard: Some(id as i32),
            schedule_id: None,
            scheduled_for: None,
            schedule_note: None,
            keyword: None,
            markers: None,
            pinned: false,
            details_removed_at: None,
        }
    }

    #[wasm_bindgen_test]
    fn progress_counts_the_finished_shards() {
        let runs = vec![shard(1, RunStatus::Success), shard(2, RunStatus::Running)];
        let group = RunGroup {
            id: 1,
            username: "ann".into(),
            environment_label: "staging".into(),
            paths: vec![],
            shards_requested: 2,
            created_at: chrono::DateTime::UNIX_EPOCH,
            runs: vec![1, 2],
            status: RunStatus::Running,
            summary: RunSummary::default(),
            started_at: None,
            finished_at: None,
            duration_ms: None,
            shard_runs: runs,
        };
        assert_eq!(shards_done(&group), "1 of 2 shards finished");
    }
}
