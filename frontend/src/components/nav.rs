//! The top navigation.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;

#[derive(Properties, PartialEq)]
struct ItemProps {
    to: Route,
    label: AttrValue,
    active: bool,
}

#[component]
fn NavItem(props: &ItemProps) -> Html {
    let navigator = use_navigator();
    let onclick = {
        let to = props.to.clone();
        Callback::from(move |event: MouseEvent| {
            // Let the browser open new tabs and windows itself.
            if event.ctrl_key() || event.meta_key() || event.shift_key() || event.button() != 0 {
                return;
            }
            if let Some(navigator) = &navigator {
                event.prevent_default();
                navigator.push(&to);
            }
        })
    };
    html! {
        <li>
            <a href={props.to.to_path()} {onclick}
                class={classes!(props.active.then_some("active"))}
                aria-current={props.active.then_some("page")}>
                { props.label.clone() }
            </a>
        </li>
    }
}

#[component]
pub fn Nav() -> Html {
    let route = use_route::<Route>();
    let is = |wanted: fn(&Route) -> bool| route.as_ref().is_some_and(wanted);
    html! {
        <header class="top">
            <a class="skip" href="#main">{ "Skip to content" }</a>
            <Link<Route> to={Route::Runs} classes="brand">{ "Test executor" }</Link<Route>>
            <nav aria-label="Main">
                <ul>
                    <NavItem to={Route::Runs} label="Runs"
                        active={is(|r| matches!(r, Route::Runs | Route::Run { .. }))} />
                    <NavItem to={Route::NewRun} label="New run"
                        active={is(|r| matches!(r, Route::NewRun))} />
                    <NavItem to={Route::Upload} label="Upload"
                        active={is(|r| matches!(r, Route::Upload))} />
                    <NavItem to={Route::Insights} label="Insights"
                        active={is(|r| matches!(r, Route::Insights))} />
                    <NavItem to={Route::Environments} label="Environments"
                        active={is(|r| matches!(r, Route::Environments | Route::Environment { .. } | Route::NewEnvironment))} />
                </ul>
            </nav>
        </header>
    }
}
