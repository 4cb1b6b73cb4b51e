//! One run: what it was created with, where it stands, its per-test
//! results and its log. Live until the run is finished.

use shared::artifact::is_inline_image;
use shared::{
    Artifact, CaseOutcome, CaseResult, HistoryItem, PassedElsewhere, Role, Run, RunStatus,
};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{self, ApiError};
use crate::app::Route;
use crate::components::elapsed::Elapsed;
use crate::components::history_strip::history_strip;
use crate::components::log_view::LogView;
use crate::components::progress::progress;
use crate::components::status_badge::status_badge;
use crate::format;
use crate::hooks::use_polling::use_polling;
use crate::hooks::use_run_log::use_run_log;
use crate::hooks::use_session::use_session;
use crate::selection;
use crate::sort::sort_by;
use crate::trend::{self, STRIP_RESULTS};

#[derive(Properties, PartialEq)]
pub struct RunDetailsProps {
    pub id: i64,
}

/// What the buttons of the page do.
#[derive(Debug, Clone, Copy)]
enum Action {
    Cancel,
    Rerun,
    RerunFailed,
    Pin(bool),
}

fn outcome_rank(outcome: CaseOutcome) -> u8 {
    match outcome {
        CaseOutcome::Failed => 0,
        CaseOutcome::Error => 1,
        CaseOutcome::Xpassed => 2,
        CaseOutcome::Xfailed => 3,
        CaseOutcome::Skipped => 4,
        CaseOutcome::Passed => 5,
    }
}

fn time_cell(at: Option<&chrono::DateTime<chrono::Utc>>) -> Html {
    match at {
        Some(at) => html! {
            <time datetime={format::utc_time(at)} title={format::utc_time(at)}>{ format::local_time(at) }</time>
        },
        None => html! { "—" },
    }
}

/// Where the run is: its environment, and the pool it came from.
fn environment_cell(run: &Run) -> Html {
    let pool = run
        .environment_label
        .as_ref()
        .map(|label| format!("any labelled {label}"));
    match (run.environment_id, pool) {
        (Some(id), None) => {
            html! { <Link<Route> to={Route::Environment { id }}>{ id }</Link<Route>> }
        }
        (Some(id), Some(pool)) => html! {
            <><Link<Route> to={Route::Environment { id }}>{ id }</Link<Route>>{ format!(" (from {pool})") }</>
        },
        (None, pool) => html! { pool.unwrap_or_default() },
    }
}

#[derive(Properties, PartialEq)]
struct ScheduledByProps {
    id: i64,
}

/// "scheduled by <name>": the schedule's name, read once.
#[component]
fn ScheduledBy(props: &ScheduledByProps) -> Html {
    let schedule = use_polling(props.id, None, crate::api::schedules::get_schedule);
    let name = match schedule.data() {
        Some(schedule) => schedule.name.clone(),
        None => format!("schedule #{}", props.id),
    };
    html! {
        <>{ "scheduled by " }<Link<Route> to={Route::Schedules}>{ name }</Link<Route>></>
    }
}

/// Everything the run was created with, and its times.
fn facts(run: &Run) -> Html {
    html! {
        <dl class="facts">
            <dt>{ "Requested by" }</dt><dd>{ run.username.clone() }</dd>
            <dt>{ "Environment" }</dt>
            <dd>{ environment_cell(run) }</dd>
            <dt>{ "Tests" }</dt>
            <dd><ul class="paths">{ for run.paths.iter().map(|p| html! { <li><code>{ p.clone() }</code></li> }) }</ul></dd>
            if let Some(keyword) = &run.keyword {
                <dt>{ "Keyword (-k)" }</dt><dd><code class="selection-keyword">{ keyword.clone() }</code></dd>
            }
            if let Some(markers) = &run.markers {
                <dt>{ "Markers (-m)" }</dt><dd><code class="selection-markers">{ markers.clone() }</code></dd>
            }
            if run.pinned {
                <dt>{ "Pinned" }</dt><dd>{ "Kept whatever the retention" }</dd>
            }
            <dt>{ "Created" }</dt><dd>{ time_cell(Some(&run.created_at)) }</dd>
            <dt>{ "Started" }</dt><dd>{ time_cell(run.started_at.as_ref()) }</dd>
            <dt>{ "Finished" }</dt><dd>{ time_cell(run.finished_at.as_ref()) }</dd>
            <dt>{ "Duration" }</dt>
            <dd>
                { match (run.duration_ms, run.started_at, run.status) {
                    (Some(ms), _, _) => html! { format::duration_ms(ms) },
                    (None, Some(started), RunStatus::Running) => html! { <Elapsed at={started} /> },
                    _ => html! { "—" },
                } }
            </dd>
            if let Some(position) = run.queue_position {
                <dt>{ "Queue position" }</dt><dd>{ format!("#{position} in line") }</dd>
            }
            if let (Some(at), RunStatus::Queued) = (run.estimated_start_at, run.status) {
                <dt>{ "Expected start" }</dt>
                <dd class="expected-start"><Elapsed {at} countdown=true />{ format!(" (~{})", format::local_hm(&at)) }</dd>
            }
            if let Some(minutes) = run.hold_on_failure_minutes {
                <dt>{ "Hold on failure" }</dt>
                <dd>{ format!("{minutes} min: if it fails, the environment is kept for {}", run.username) }</dd>
            }
            if let Some(code) = run.exit_code {
                <dt>{ "Exit code" }</dt><dd>{ code }</dd>
            }
            if let Some(reason) = &run.status_reason {
                <dt>{ "Reason" }</dt><dd class="status-reason">{ format::local_reason(reason) }</dd>
            }
            if let (Some(group), Some(shard)) = (run.run_group_id, run.shard) {
                <dt>{ "Run group" }</dt>
                <dd><Link<Route> to={Route::RunGroup { id: group }}>{ format!("shard {shard} of group #{group}") }</Link<Route>></dd>
            }
            if let Some(schedule) = run.schedule_id {
                <dt>{ "Schedule" }</dt>
                <dd class="scheduled-by"><ScheduledBy id={schedule} /></dd>
            }
            if let Some(note) = &run.schedule_note {
                <dt>{ "Schedule note" }</dt><dd class="schedule-note">{ note.clone() }</dd>
            }
            if let Some(original) = run.rerun_of {
                <dt>{ "Re-run of" }</dt>
                <dd><Link<Route> to={Route::Run { id: original }}>{ format!("#{original}") }</Link<Route>></dd>
            }
        </dl>
    }
}

/// The counts of the run's tests, and its progress while it runs.
fn summary(run: &Run) -> Html {
    let summary = &run.summary;
    let count = |label: &'static str, value: Option<i32>, class: &'static str| match value {
        Some(value) if value > 0 || matches!(label, "total" | "passed" | "failed") => html! {
            <li class={class}><span class="count-value">{ value }</span>{ " " }{ label }</li>
        },
        _ => html! {},
    };
    html! {
        <div class="summary-block">
            if run.status == RunStatus::Running {
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
                { count("subtests passed", summary.subtests_passed, "passed") }
            </ul>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct CasesProps {
    cases: Vec<CaseResult>,
    /// The recent results of the failed tests' files, newest first; empty
    /// until they arrive.
    history: Vec<HistoryItem>,
    /// Where each failed test passed this week; empty until known.
    elsewhere: Vec<PassedElsewhere>,
    run_id: i64,
    /// Tests still finish one by one.
    running: bool,
    /// The run's artifacts, for the types of the attached files.
    artifacts: Vec<Artifact>,
}

/// An artifact shown inline when it is a raster image (which cannot run
/// script), else a download link.
fn artifact_view(run_id: i64, artifact: &Artifact) -> Html {
    let url = api::runs::artifact_url(run_id, &artifact.path);
    html! {
        <figure class="artifact">
            if is_inline_image(&artifact.content_type) {
                <a href={url.clone()} download="">
                    <img src={url.clone()} alt={artifact.path.clone()} loading="lazy" />
                </a>
            }
            <figcaption>
                <a href={url} download="">{ artifact.path.clone() }</a>
                { format!(" · {} · {}", selection::size(artifact.size), artifact.content_type) }
            </figcaption>
        </figure>
    }
}

/// The files a test attached, from the run's artifacts.
fn case_attachments(run_id: i64, paths: &[String], artifacts: &[Artifact]) -> Html {
    html! {
        <div class="case-attachments" aria-label="Attachments">
            { for paths.iter().map(|path| match artifacts.iter().find(|a| &a.path == path) {
                Some(artifact) => artifact_view(run_id, artifact),
                None => html! {
                    <a class="attachment" href={api::runs::artifact_url(run_id, path)} download="">{ path.clone() }</a>
                },
            }) }
        </div>
    }
}

/// Every artifact of the run, images first.
fn artifacts_section(run_id: i64, artifacts: &[Artifact]) -> Html {
    let mut shown: Vec<&Artifact> = artifacts.iter().collect();
    shown.sort_by_key(|a| (!is_inline_image(&a.content_type), a.path.clone()));
    html! {
        <section class="artifacts" aria-labelledby="artifacts-title">
            <h2 id="artifacts-title">{ format!("Artifacts ({})", artifacts.len()) }</h2>
            <div class="artifact-list">
                { for shown.into_iter().map(|artifact| artifact_view(run_id, artifact)) }
            </div>
        </section>
    }
}

/// Per-test results, failures first, each failure with its recent history.
#[component]
fn Cases(props: &CasesProps) -> Html {
    let navigator = use_navigator();
    let mut cases = props.cases.clone();
    sort_by(&mut cases, |a, b| {
        outcome_rank(a.outcome)
            .cmp(&outcome_rank(b.outcome))
            .then_with(|| a.nodeid.cmp(&b.nodeid))
    });
    html! {
        <section class="cases" aria-labelledby="cases-title">
            <h2 id="cases-title">
                if props.running {
                    { format!("Tests ({} so far)", cases.len()) }
                } else {
                    { format!("Tests ({})", cases.len()) }
                }
            </h2>
            if cases.is_empty() && props.running {
                <p class="empty">{ "No test has finished yet." }</p>
            } else if cases.is_empty() {
                <p class="empty">{ "No per-test results were recorded." }</p>
            } else {
                <div class="table-wrap">
                    <table class="responsive">
                        <thead>
                            <tr>
                                <th scope="col">{ "Test" }</th>
                                <th scope="col">{ "Outcome" }</th>
                                <th scope="col">{ "Time" }</th>
                            </tr>
                        </thead>
                        <tbody>
                            { for cases.iter().map(|case| html! {
                                <tr key={case.nodeid.clone()} class={format!("case-{}", case.outcome.as_str())}>
                                    <td data-label="Test">
                                        <div class="case-test">
                                            <div class="case-head">
                                                <code class="nodeid">{ case.nodeid.clone() }</code>
                                                if case.outcome.is_failure() {
                                                    { history_strip(&navigator, &trend::strip(&props.history, &case.nodeid), props.run_id) }
                                                    if let Some(found) = props.elsewhere.iter().find(|e| e.nodeid == case.nodeid) {
                                                        <span class="passed-elsewhere" title={format!("environments {}", found.environment_ids.iter().map(i32::to_string).collect::<Vec<_>>().join(", "))}>
                                                            { crate::health::passed_elsewhere(found.passed_elsewhere) }
                                                        </span>
                                                    }
                                                }
                                            </div>
                                            if let Some(message) = &case.message {
                                                <pre class="case-message">{ message.clone() }</pre>
                                            }
                                            if !case.attachments.is_empty() {
                                                { case_attachments(props.run_id, &case.attachments, &props.artifacts) }
                                            }
                                        </div>
                                    </td>
                                    <td data-label="Outcome">
                                        <span class={classes!("badge", format!("outcome-{}", case.outcome.as_str()))}>
                                            { case.outcome.as_str() }
                                        </span>
                                    </td>
                                    <td data-label="Time">{ format::duration_ms(case.duration_ms) }</td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                </div>
            }
        </section>
    }
}

#[component]
pub fn RunDetailsPage(props: &RunDetailsProps) -> Html {
    let id = props.id;
    let navigator = use_navigator();
    let action_error = use_state(|| None::<ApiError>);
    let acting = use_state(|| false);
    let session = use_session();

    let finished = use_state_eq(|| false);
    let run = use_polling(id, (!*finished).then_some(1000), api::runs::get_run);
    let now_finished = run.data().is_some_and(|run| run.status.is_finished());
    {
        let finished = finished.clone();
        use_effect_with(now_finished, move |&now| finished.set(now));
    }
    // Per-test results as pytest reports them: every second while the run
    // goes (an unchanged list costs a 304), once more when it is over.
    let cases = use_polling(
        (id, *finished),
        (!*finished).then_some(1000),
        |(id, _)| async move { api::runs::cases(id).await.map(Some) },
    );
    // The recent history of the failed tests: once, when the results are
    // all in, one request per file.
    let failed_files = cases
        .data()
        .and_then(Option::as_ref)
        .filter(|_| *finished)
        .map(|cases| trend::failed_files(cases))
        .unwrap_or_default();
    let history = use_polling(failed_files, None, |files: Vec<String>| async move {
        let mut history = Vec::new();
        for file in &files {
            history.extend(api::insights::file_history(file, STRIP_RESULTS).await?);
        }
        Ok(history)
    });
    // Where the failed tests passed on other environments: once, when the
    // results are all in and some failed.
    let failures_known = *finished
        && cases
            .data()
            .and_then(Option::as_ref)
            .is_some_and(|cases| cases.iter().any(|c| c.outcome.is_failure()));
    let elsewhere = use_polling((id, failures_known), None, |(id, known)| async move {
        if known {
            api::insights::passed_elsewhere(id).await
        } else {
            Ok(Vec::new())
        }
    });
    let log = use_run_log(id, 1000);
    // Artifacts are stored as the run finishes: read once it has.
    let artifacts = use_polling((id, *finished), None, |(id, finished)| async move {
        if finished {
            api::runs::artifacts(id).await
        } else {
            Ok(Vec::new())
        }
    });
    let artifact_list = artifacts.data().cloned().unwrap_or_default();

    let act = |action: Action| {
        let navigator = navigator.clone();
        let action_error = action_error.clone();
        let acting = acting.clone();
        let refresh = run.refresh_callback();
        Callback::from(move |_: MouseEvent| {
            if *acting {
                return;
            }
            acting.set(true);
            let navigator = navigator.clone();
            let action_error = action_error.clone();
            let acting = acting.clone();
            let refresh = refresh.clone();
            wasm_bindgen_futures::spawn_local(async move {
                // Cancelling changes this run; a re-run makes a new one.
                let result = match action {
                    Action::Cancel => api::runs::cancel(id).await.map(|_| None),
                    Action::Rerun => api::runs::rerun(id, false).await.map(Some),
                    Action::RerunFailed => api::runs::rerun(id, true).await.map(Some),
                    Action::Pin(pinned) => api::runs::set_pinned(id, pinned).await.map(|_| None),
                };
                acting.set(false);
                match result {
                    Ok(Some(new_run)) => {
                        if let Some(navigator) = navigator {
                            navigator.push(&Route::Run { id: new_run.id });
                        }
                    }
                    Ok(None) => {
                        action_error.set(None);
                        refresh.emit(());
                    }
                    Err(why) => action_error.set(Some(why)),
                }
            });
        })
    };

    let Some(data) = run.data() else {
        return match run.error() {
            Some(error) if error.status == 404 => html! {
                <section class="page">
                    <h1>{ format!("Run #{id}") }</h1>
                    <p class="error" role="alert">{ format!("There is no run #{id}.") }</p>
                    <p><Link<Route> to={Route::Runs}>{ "Back to the runs" }</Link<Route>></p>
                </section>
            },
            Some(error) => html! {
                <section class="page">
                    <h1>{ format!("Run #{id}") }</h1>
                    <p class="error" role="alert">{ format!("The run could not be read: {}", error.message()) }</p>
                </section>
            },
            None => html! {
                <section class="page"><h1>{ format!("Run #{id}") }</h1><p class="loading">{ "Loading…" }</p></section>
            },
        };
    };
    let has_failures = cases
        .data()
        .and_then(Option::as_ref)
        .is_some_and(|cases| cases.iter().any(|c| c.outcome.is_failure()));
    // Its user and admins may cancel or re-run it; others see no buttons.
    let may_act = session.may_act_for(&data.username);

    html! {
        <section class="page run-page">
            <div class="page-head">
                <h1>{ format!("Run #{id}") }</h1>
                { status_badge(data, false) }
                if may_act {
                <div class="actions">
                    if !data.status.is_finished() {
                        <button type="button" class="danger" onclick={act(Action::Cancel)} disabled={*acting}>
                            { "Cancel" }
                        </button>
                    }
                    <button type="button" onclick={act(Action::Rerun)} disabled={*acting}>{ "Re-run" }</button>
                    if has_failures {
                        <button type="button" onclick={act(Action::RerunFailed)} disabled={*acting}>
                            { "Re-run failed" }
                        </button>
                    }
                    if session.may(Role::Admin) {
                        <button type="button" class="pin" onclick={act(Action::Pin(!data.pinned))} disabled={*acting}
                            aria-pressed={if data.pinned { "true" } else { "false" }}
                            title="A pinned run keeps its log, results and artifacts whatever the retention">
                            { if data.pinned { "Unpin" } else { "Pin" } }
                        </button>
                    }
                </div>
                }
            </div>
            if let Some(error) = &*action_error {
                <p class="error" role="alert">{ error.message().to_string() }</p>
            }
            if let Some(error) = run.error().filter(|e| !e.is_unreachable()) {
                <p class="error" role="alert">{ format!("The run could not be refreshed: {}", error.message()) }</p>
            }
            { facts(data) }
            { summary(data) }
            if let Some(at) = data.details_removed_at {
                <p class="details-removed" role="status">
                    { format!("Its log, per-test results and artifacts were removed by retention on {}; the summary above is what is left.", format::local_time(&at)) }
                </p>
            }
            if let Some(Some(list)) = cases.data() {
                <Cases cases={list.clone()} history={history.data().cloned().unwrap_or_default()}
                    elsewhere={elsewhere.data().cloned().unwrap_or_default()} run_id={id} running={!*finished}
                    artifacts={artifact_list.clone()} />
            } else if let Some(error) = cases.error() {
                <p class="error" role="alert">{ format!("The per-test results could not be read: {}", error.message()) }</p>
            }
            if !artifact_list.is_empty() {
                { artifacts_section(id, &artifact_list) }
            }
            <LogView pieces={log.pieces.clone()} complete={log.complete} error={log.error.clone()}
                raw_url={AttrValue::from(api::runs::raw_log_url(id))} />
        </section>
    }
}
