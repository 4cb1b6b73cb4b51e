//! Tests done out of tests collected, while a run is running.

use shared::RunSummary;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ProgressProps {
    pub summary: RunSummary,
    #[prop_or_default]
    pub compact: bool,
}

#[component]
pub fn Progress(props: &ProgressProps) -> Html {
    let done = props.summary.done();
    match props.summary.total {
        Some(total) if total > 0 => {
            let label = format!("{done} of {total} tests done");
            html! {
                <span class={classes!("progress", props.compact.then_some("compact"))}>
                    <progress max={total.to_string()} value={done.min(total).to_string()}
                        aria-label={label.clone()} title={label}></progress>
                    <span class="progress-text">{ format!("{done}/{total}") }</span>
                </span>
            }
        }
        _ => html! {
            <span class={classes!("progress", props.compact.then_some("compact"))}>
                <progress aria-label="collecting tests"></progress>
                <span class="progress-text">{ "collecting" }</span>
            </span>
        },
    }
}
