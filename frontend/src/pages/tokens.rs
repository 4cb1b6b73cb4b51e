//! "My tokens": the user's personal API tokens for scripts and CI. A new
//! token's secret is shown once, right after it is made.

use shared::{ApiToken, CreatedToken, NewToken, Role};
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::components::form_error::FormError;
use crate::format;
use crate::hooks::use_session::use_session;

#[component]
pub fn TokensPage() -> Html {
    let session = use_session();
    let tokens = use_state(|| None::<Vec<ApiToken>>);
    let error = use_state(|| None::<ApiError>);
    let created = use_state(|| None::<CreatedToken>);
    let name = use_state(String::new);
    let role = use_state(|| None::<Role>);
    let days = use_state(String::new);
    let reload = {
        let (tokens, error) = (tokens.clone(), error.clone());
        Callback::from(move |()| {
            let (tokens, error) = (tokens.clone(), error.clone());
            spawn_local(async move {
                match api::identity::tokens().await {
                    Ok(list) => tokens.set(Some(list)),
                    Err(why) => error.set(Some(why)),
                }
            });
        })
    };
    {
        let reload = reload.clone();
        use_effect_with((), move |()| reload.emit(()));
    }
    let onsubmit = {
        let (name, role, days) = (name.clone(), role.clone(), days.clone());
        let (error, created, reload) = (error.clone(), created.clone(), reload.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let expires = days.trim();
            let expires_in_days = if expires.is_empty() {
                None
            } else {
                match expires.parse::<i64>() {
                    Ok(days) => Some(days),
                    Err(_) => {
                        error.set(Some(ApiError::invalid_field(
                            "expires_in_days",
                            "must be a whole number of days".into(),
                        )));
                        return;
                    }
                }
            };
            let new = NewToken {
                name: (*name).clone(),
                role: *role,
                expires_in_days,
            };
            let (error, created, reload, name) =
                (error.clone(), created.clone(), reload.clone(), name.clone());
            spawn_local(async move {
                match api::identity::create_token(&new).await {
                    Ok(token) => {
                        error.set(None);
                        name.set(String::new());
                        created.set(Some(token));
                        reload.emit(());
                    }
                    Err(why) => error.set(Some(why)),
                }
            });
        })
    };
    let own_role = session.me.as_ref().map_or(Role::Admin, |me| me.role);
    let on_role = {
        let role = role.clone();
        Callback::from(move |event: Event| {
            let value = event.target_unchecked_into::<HtmlSelectElement>().value();
            role.set(Role::parse(&value));
        })
    };
    let revoke = |id: i64| {
        let (error, reload) = (error.clone(), reload.clone());
        Callback::from(move |_: MouseEvent| {
            let (error, reload) = (error.clone(), reload.clone());
            spawn_local(async move {
                match api::identity::delete_token(id).await {
                    Ok(()) => reload.emit(()),
                    Err(why) => error.set(Some(why)),
                }
            });
        })
    };
    let rows = match &*tokens {
        None => html! { <p class="hint">{ "Loading…" }</p> },
        Some(list) if list.is_empty() => html! { <p class="hint">{ "No tokens yet." }</p> },
        Some(list) => html! {
            <div class="table-wrap">
                <table class="tokens responsive">
                    <thead><tr>
                        <th scope="col">{ "Name" }</th><th scope="col">{ "Role" }</th>
                        <th scope="col">{ "Created" }</th><th scope="col">{ "Expires" }</th><th></th>
                    </tr></thead>
                    <tbody>
                        { for list.iter().map(|token| html! {
                            <tr data-token-id={token.id.to_string()}>
                                <td data-label="Name">{ token.name.clone() }</td>
                                <td data-label="Role">{ token.role.as_str() }</td>
                                <td data-label="Created">{ format::local_time(&token.created_at) }</td>
                                <td data-label="Expires">{ token.expires_at.as_ref().map_or("never".to_string(), format::local_time) }</td>
                                <td><button class="small danger" onclick={revoke(token.id)}>{ "Revoke" }</button></td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </div>
        },
    };
    html! {
        <section>
            <h1>{ "My API tokens" }</h1>
            <p class="hint">{ "Scripts and CI jobs send a token as " }
                <code>{ "Authorization: Bearer <token>" }</code>
                { " (scripts/ci-run.sh reads it from EXECUTOR_TOKEN). A token acts as you, with at most your role." }</p>
            if let Some(token) = (*created).clone() {
                <div class="token-created" role="status">
                    <p>{ format!("Token “{}” created. Copy it now: it is not shown again.", token.info.name) }</p>
                    <code class="token-secret">{ token.token.clone() }</code>
                </div>
            }
            <form class="inline-form" {onsubmit}>
                <label for="token-name">{ "Name" }</label>
                <input id="token-name" required=true placeholder="ci" value={(*name).clone()}
                    oninput={let name = name.clone(); Callback::from(move |e: InputEvent| name.set(e.target_unchecked_into::<HtmlInputElement>().value()))} />
                <label for="token-role">{ "Role" }</label>
                <select id="token-role" onchange={on_role}>
                    { for Role::ALL.into_iter().filter(|r| *r <= own_role).rev().map(|r| html! {
                        <option value={r.as_str()} selected={*role == Some(r)}>{ r.as_str() }</option>
                    }) }
                </select>
                <label for="token-days">{ "Expires in days" }</label>
                <input id="token-days" inputmode="numeric" placeholder="never" value={(*days).clone()}
                    oninput={let days = days.clone(); Callback::from(move |e: InputEvent| days.set(e.target_unchecked_into::<HtmlInputElement>().value()))} />
                <button type="submit" class="primary">{ "Create token" }</button>
            </form>
            if let Some(error) = (*error).clone() {
                <FormError {error} known={&[] as &'static [&'static str]} />
            }
            { rows }
        </section>
    }
}
