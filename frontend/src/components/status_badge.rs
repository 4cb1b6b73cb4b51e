//! A run's status as a coloured badge, with its queue position, expected
//! start and why it waits, or its running time and progress.

use shared::{Run, RunStatus};
use yew::prelude::*;

use crate::components::elapsed::Elapsed;
use crate::components::progress::progress;
use crate::format;

/// The badge alone, or with `detailed`, next to its queue position or its
/// clock and progress (the runs table). A plain function: it is part of a
/// row or a page head, which re-render with it anyway.
pub fn status_badge(run: &Run, detailed: bool) -> Html {
    let status = run.status;
    let title = run
        .status_reason
        .as_deref()
        .map(format::local_reason)
        .unwrap_or_else(|| status.as_str().to_string());
    let badge = html! {
        <span class={classes!("badge", format!("status-{status}"))} {title} data-status={status.as_str()}>
            { status.as_str() }
        </span>
    };
    if !detailed {
        return badge;
    }
    match status {
        RunStatus::Queued => html! {
            <span class="status">
                { badge }
                if let Some(position) = run.queue_position {
                    <span class="queue-position">{ format!("#{position} in line") }</span>
                }
                if let Some(at) = run.estimated_start_at {
                    <Elapsed {at} countdown=true />
                }
                if let Some(reason) = &run.status_reason {
                    <span class="queue-reason">{ format::local_reason(reason) }</span>
                }
            </span>
        },
        RunStatus::Running => html! {
            <span class="status">
                { badge }
                if let Some(started) = run.started_at {
                    <Elapsed at={started} />
                }
                { progress(&run.summary, true) }
            </span>
        },
        _ => badge,
    }
}
