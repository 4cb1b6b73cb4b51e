//! Changing one's own password.

use shared::PasswordChange;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::components::form_error::FormError;

#[component]
pub fn PasswordPage() -> Html {
    let current = use_state(String::new);
    let new = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let done = use_state(|| false);
    let onsubmit = {
        let (current, new, error, done) =
            (current.clone(), new.clone(), error.clone(), done.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let change = PasswordChange {
                current_password: (*current).clone(),
                new_password: (*new).clone(),
            };
            let (error, done) = (error.clone(), done.clone());
            spawn_local(async move {
                match api::identity::change_password(&change).await {
                    Ok(()) => {
                        error.set(None);
                        done.set(true);
                    }
                    Err(why) => error.set(Some(why)),
                }
            });
        })
    };
    let on = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |event: InputEvent| {
            state.set(event.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    html! {
        <section>
            <h1>{ "Change password" }</h1>
            <form class="stacked" {onsubmit}>
                <label for="current-password">{ "Current password" }</label>
                <input id="current-password" type="password" autocomplete="current-password"
                    required=true value={(*current).clone()} oninput={on(&current)} />
                <label for="new-password">{ "New password (at least 8 characters)" }</label>
                <input id="new-password" type="password" autocomplete="new-password"
                    required=true value={(*new).clone()} oninput={on(&new)} />
                if let Some(error) = (*error).clone() {
                    <FormError {error} known={&[] as &'static [&'static str]} />
                }
                if *done {
                    <p class="success" role="status">{ "Password changed; your other sessions have ended." }</p>
                }
                <button type="submit" class="primary">{ "Change password" }</button>
            </form>
        </section>
    }
}
