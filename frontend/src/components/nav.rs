//! The top navigation.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;
use crate::components::run_link::open_in_app;

/// One entry; a plain function, for a smaller wasm.
fn nav_item(navigator: &Option<Navigator>, to: Route, label: &'static str, active: bool) -> Html {
    let href = to.to_path();
    let onclick = open_in_app(navigator, to);
    html! {
        <li>
            <a {href} {onclick}
                class={classes!(active.then_some("active"))}
                aria-current={active.then_some("page")}>
                { label }
            </a>
        </li>
    }
}

#[component]
pub fn Nav() -> Html {
    let route = use_route::<Route>();
    let navigator = use_navigator();
    let is = |wanted: fn(&Route) -> bool| route.as_ref().is_some_and(wanted);
    html! {
        <header class="top">
            <a class="skip" href="#main">{ "Skip to content" }</a>
            <Link<Route> to={Route::Runs} classes="brand">{ "Test executor" }</Link<Route>>
            <nav aria-label="Main">
                <ul>
                    { nav_item(&navigator, Route::Runs, "Runs",
                        is(|r| matches!(r, Route::Runs | Route::Run { .. }))) }
                    { nav_item(&navigator, Route::NewRun, "New run", is(|r| matches!(r, Route::NewRun))) }
                    { nav_item(&navigator, Route::Upload, "Upload", is(|r| matches!(r, Route::Upload))) }
                    { nav_item(&navigator, Route::Insights, "Insights", is(|r| matches!(r, Route::Insights))) }
                    { nav_item(&navigator, Route::Health, "Health", is(|r| matches!(r, Route::Health))) }
                    { nav_item(&navigator, Route::Board, "Board", is(|r| matches!(r, Route::Board))) }
                    { nav_item(&navigator, Route::Environments, "Environments",
                        is(|r| matches!(r, Route::Environments | Route::Environment { .. } | Route::NewEnvironment))) }
                    { nav_item(&navigator, Route::Schedules, "Schedules", is(|r| matches!(r, Route::Schedules))) }
                    { nav_item(&navigator, Route::Webhooks, "Webhooks", is(|r| matches!(r, Route::Webhooks))) }
                </ul>
            </nav>
        </header>
    }
}
