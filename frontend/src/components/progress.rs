//! Tests done out of tests collected, while a run is running.

use shared::RunSummary;
use yew::prelude::*;

/// A plain function, not a component: it is only ever part of a badge or
/// a summary, which re-render with it anyway.
pub fn progress(summary: &RunSummary, compact: bool) -> Html {
    let done = summary.finished_tests();
    match summary.total {
        Some(total) if total > 0 => {
            let label = format!("{done} of {total} tests done");
            html! {
                <span class={classes!("progress", compact.then_some("compact"))}>
                    <progress max={total.to_string()} value={done.min(total).to_string()}
                        aria-label={label.clone()} title={label}></progress>
                    <span class="progress-text">{ format!("{done}/{total}") }</span>
                </span>
            }
        }
        _ => html! {
            <span class={classes!("progress", compact.then_some("compact"))}>
                <progress aria-label="collecting tests"></progress>
                <span class="progress-text">{ "collecting" }</span>
            </span>
        },
    }
}
