//! Any address the app does not know.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;

/// A plain function: a page without state needs no component.
pub fn not_found_page() -> Html {
    html! {
        <section class="page not-found">
            <h1>{ "Page not found" }</h1>
            <p>{ "There is nothing at this address." }</p>
            <p><Link<Route> to={Route::Runs}>{ "Go to the runs" }</Link<Route>></p>
        </section>
    }
}
