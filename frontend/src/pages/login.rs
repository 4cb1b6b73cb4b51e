//! The login page; on a first start without `ADMIN_PASSWORD`, the admin's
//! set-up with the code from the service's log. Either way it goes back to
//! where the user was (`?next=`).

use shared::{Login, Setup};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::components::form_error::FormError;

/// Where to go once logged in: `next` of the query, if it is a path of
/// this app (never another site).
fn next_path() -> String {
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    let next = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("next="))
        .and_then(|raw| js_sys::decode_uri_component(raw).ok())
        .map(String::from)
        .unwrap_or_default();
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/login") {
        next
    } else {
        "/".to_string()
    }
}

/// A full load of the page the user wanted, so that the whole app starts
/// again with the new session.
fn go_on() {
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign(&next_path());
    }
}

fn text(event: InputEvent) -> String {
    event.target_unchecked_into::<HtmlInputElement>().value()
}

#[component]
pub fn LoginPage() -> Html {
    let setup_required = use_state(|| None::<bool>);
    let username = use_state(String::new);
    let password = use_state(String::new);
    let code = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    {
        let setup_required = setup_required.clone();
        use_effect_with((), move |()| {
            spawn_local(async move {
                match api::identity::status().await {
                    Ok(status) if !status.auth => go_on(),
                    Ok(status) => setup_required.set(Some(status.setup_required)),
                    Err(_) => setup_required.set(Some(false)),
                }
            });
        });
    }
    // Other users may log in while the admin still waits for its password.
    let skip_setup = use_state(|| false);
    let setting_up = *setup_required == Some(true) && !*skip_setup;
    let onsubmit = {
        let (username, password, code) = (username.clone(), password.clone(), code.clone());
        let (error, busy) = (error.clone(), busy.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let (error, busy) = (error.clone(), busy.clone());
            let login = Login {
                username: (*username).clone(),
                password: (*password).clone(),
            };
            let setup = Setup {
                code: (*code).clone(),
                password: (*password).clone(),
            };
            busy.set(true);
            spawn_local(async move {
                let result = if setting_up {
                    api::identity::setup(&setup).await
                } else {
                    api::identity::login(&login).await
                };
                match result {
                    Ok(_) => go_on(),
                    Err(why) => {
                        error.set(Some(why));
                        busy.set(false);
                    }
                }
            });
        })
    };
    let on = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |event: InputEvent| state.set(text(event)))
    };
    html! {
        <section class="login">
            <h1>{ if setting_up { "Set up the admin account" } else { "Log in" } }</h1>
            if setting_up {
                <p class="hint">{ "First start: enter the one-time setup code from the service's log \
                    (or the output of make run), and choose the password of user admin." }</p>
            }
            <form class="login-form" {onsubmit}>
                if setting_up {
                    <label for="setup-code">{ "Setup code" }</label>
                    <input id="setup-code" name="code" autocomplete="one-time-code" required=true
                        value={(*code).clone()} oninput={on(&code)} />
                } else {
                    <label for="login-username">{ "User name" }</label>
                    <input id="login-username" name="username" autocomplete="username" required=true
                        value={(*username).clone()} oninput={on(&username)} />
                }
                <label for="login-password">{ if setting_up { "New password" } else { "Password" } }</label>
                <input id="login-password" name="password" type="password" required=true
                    autocomplete={if setting_up { "new-password" } else { "current-password" }}
                    value={(*password).clone()} oninput={on(&password)} />
                if let Some(error) = (*error).clone() {
                    <FormError {error} known={&[] as &'static [&'static str]} />
                }
                <button type="submit" class="primary" disabled={*busy || setup_required.is_none()}>
                    { if setting_up { "Set password and log in" } else { "Log in" } }
                </button>
            </form>
            if setting_up {
                <p><button type="button" class="link"
                    onclick={let skip_setup = skip_setup.clone(); Callback::from(move |_: MouseEvent| skip_setup.set(true))}>
                    { "I have an account: log in" }
                </button></p>
            }
        </section>
    }
}
