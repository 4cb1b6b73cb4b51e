//! Links to a run that carry a tooltip and a class of their own (the
//! router's `Link` takes neither) and still open the run inside the app.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;

/// A link to run `id` whose tooltip, `title`, is also its accessible name.
/// A plain function rather than a component: strips and tables hold many.
pub fn run_link(
    navigator: &Option<Navigator>,
    id: i64,
    title: String,
    class: Classes,
    children: Html,
) -> Html {
    let onclick = open_in_app(navigator, Route::Run { id });
    html! {
        <a href={Route::Run { id }.to_path()} {class} {onclick}
            title={title.clone()} aria-label={title} data-run-id={id.to_string()}>
            { children }
        </a>
    }
}

/// A plain link's click handler that opens `to` inside the app, unless the
/// user asks the browser for a new tab or window (modifier keys, middle
/// button).
pub fn open_in_app(navigator: &Option<Navigator>, to: Route) -> Callback<MouseEvent> {
    let navigator = navigator.clone();
    Callback::from(move |event: MouseEvent| {
        if event.ctrl_key() || event.meta_key() || event.shift_key() || event.button() != 0 {
            return;
        }
        if let Some(navigator) = &navigator {
            event.prevent_default();
            navigator.push(&to);
        }
    })
}
