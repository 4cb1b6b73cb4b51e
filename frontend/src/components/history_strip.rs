//! A test's last results as a row of coloured squares, oldest on the left,
//! each a link to its run.

use shared::HistoryItem;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::run_link::run_link;

/// `items` oldest first; the run on screen, `current_run`, is outlined.
pub fn history_strip(
    navigator: &Option<Navigator>,
    items: &[HistoryItem],
    current_run: i64,
) -> Html {
    if items.is_empty() {
        return html! {};
    }
    let label = format!("Last {} results, oldest first", items.len());
    html! {
        <span class="history-strip" role="group" aria-label={label.clone()} title={label}>
            { for items.iter().map(|item| {
                let outcome = item.outcome.as_str();
                let class = classes!(
                    "history-cell",
                    format!("outcome-{outcome}"),
                    (item.run_id == current_run).then_some("current"),
                );
                run_link(navigator, item.run_id, format!("Run #{}: {outcome}", item.run_id), class, Html::default())
            }) }
        </span>
    }
}
