//! The top navigation.

use yew::prelude::*;
use yew_router::prelude::*;

use shared::Role;
use wasm_bindgen_futures::spawn_local;

use crate::api;
use crate::app::Route;
use crate::components::run_link::open_in_app;
use crate::hooks::use_session::{use_session, Session};

/// The user's menu: who is logged in, their tokens and password, the admin
/// pages, and logging out.
fn user_menu(navigator: &Option<Navigator>, session: &Session) -> Html {
    let Some(me) = &session.me else {
        return html! {};
    };
    let logout = Callback::from(|_: MouseEvent| {
        spawn_local(async {
            // Whatever the answer, the login page is where this ends.
            let _ = api::identity::logout().await;
            if let Some(window) = web_sys::window() {
                let _ = window.location().assign("/login");
            }
        });
    });
    let admin = me.role == Role::Admin;
    html! {
        <details class="user-menu">
            <summary>
                <span class="user-name">{ me.username.clone() }</span>
                <span class="user-role">{ format!(" ({})", me.role) }</span>
            </summary>
            <ul>
                { nav_item(navigator, Route::Tokens, "My tokens", false) }
                { nav_item(navigator, Route::Password, "Change password", false) }
                if admin {
                    { nav_item(navigator, Route::Users, "Users", false) }
                    { nav_item(navigator, Route::Audit, "Audit log", false) }
                }
                <li><button type="button" class="link" onclick={logout}>{ "Log out" }</button></li>
            </ul>
        </details>
    }
}

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
    let session = use_session();
    if is(|r| matches!(r, Route::Login)) {
        return html! {
            <header class="top">
                <span class="brand">{ "Test executor" }</span>
            </header>
        };
    }
    let member = session.may(Role::Member);
    html! {
        <header class="top">
            <a class="skip" href="#main">{ "Skip to content" }</a>
            <Link<Route> to={Route::Runs} classes="brand">{ "Test executor" }</Link<Route>>
            <nav aria-label="Main">
                <ul>
                    { nav_item(&navigator, Route::Runs, "Runs",
                        is(|r| matches!(r, Route::Runs | Route::Run { .. }))) }
                    if member {
                        { nav_item(&navigator, Route::NewRun, "New run", is(|r| matches!(r, Route::NewRun))) }
                        { nav_item(&navigator, Route::Upload, "Upload", is(|r| matches!(r, Route::Upload))) }
                    }
                    { nav_item(&navigator, Route::Insights, "Insights", is(|r| matches!(r, Route::Insights))) }
                    { nav_item(&navigator, Route::Health, "Health", is(|r| matches!(r, Route::Health))) }
                    { nav_item(&navigator, Route::Board, "Board", is(|r| matches!(r, Route::Board))) }
                    { nav_item(&navigator, Route::Environments, "Environments",
                        is(|r| matches!(r, Route::Environments | Route::Environment { .. } | Route::NewEnvironment))) }
                    { nav_item(&navigator, Route::Schedules, "Schedules", is(|r| matches!(r, Route::Schedules))) }
                    if session.may(Role::Admin) {
                        { nav_item(&navigator, Route::Webhooks, "Webhooks", is(|r| matches!(r, Route::Webhooks))) }
                    }
                </ul>
            </nav>
            { user_menu(&navigator, &session) }
        </header>
    }
}
