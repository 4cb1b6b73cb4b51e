//! A run's status as a coloured badge, with its queue position or running
//! time and progress.

use shared::{Run, RunStatus};
use yew::prelude::*;

use crate::components::elapsed::Elapsed;
use crate::components::progress::Progress;

#[derive(Properties, PartialEq)]
pub struct StatusBadgeProps {
    pub run: Run,
    /// Show progress and clock next to the badge (the runs table).
    #[prop_or_default]
    pub detailed: bool,
}

#[component]
pub fn StatusBadge(props: &StatusBadgeProps) -> Html {
    let run = &props.run;
    let status = run.status;
    let title = run
        .status_reason
        .clone()
        .unwrap_or_else(|| status.as_str().to_string());
    let badge = html! {
        <span class={classes!("badge", format!("status-{status}"))} {title} data-status={status.as_str()}>
            { status.as_str() }
        </span>
    };
    if !props.detailed {
        return badge;
    }
    match status {
        RunStatus::Queued => html! {
            <span class="status">
                { badge }
                if let Some(position) = run.queue_position {
                    <span class="queue-position">{ format!("#{position} in line") }</span>
                }
            </span>
        },
        RunStatus::Running => html! {
            <span class="status">
                { badge }
                if let Some(started) = run.started_at {
                    <Elapsed since={started} />
                }
                <Progress summary={run.summary.clone()} compact=true />
            </span>
        },
        _ => badge,
    }
}
