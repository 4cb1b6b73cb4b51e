//! Users (admins only): create them, change their role or password,
//! delete them.

use shared::{Role, User, UserForm};
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::components::form_error::FormError;
use crate::format;

fn role_options(selected: Role) -> Html {
    html! {
        { for Role::ALL.into_iter().map(|r| html! {
            <option value={r.as_str()} selected={r == selected}>{ r.as_str() }</option>
        }) }
    }
}

#[component]
pub fn UsersPage() -> Html {
    let users = use_state(|| None::<Vec<User>>);
    let error = use_state(|| None::<ApiError>);
    let name = use_state(String::new);
    let password = use_state(String::new);
    let role = use_state(|| Role::Member);
    let reload = {
        let (users, error) = (users.clone(), error.clone());
        Callback::from(move |()| {
            let (users, error) = (users.clone(), error.clone());
            spawn_local(async move {
                match api::identity::users().await {
                    Ok(list) => users.set(Some(list)),
                    Err(why) => error.set(Some(why)),
                }
            });
        })
    };
    {
        let reload = reload.clone();
        use_effect_with((), move |()| reload.emit(()));
    }
    // Runs a change, then shows the list as it is now (or why not).
    let apply = {
        let (error, reload) = (error.clone(), reload.clone());
        move |change: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>>>>| {
            let (error, reload) = (error.clone(), reload.clone());
            spawn_local(async move {
                match change.await {
                    Ok(()) => error.set(None),
                    Err(why) => error.set(Some(why)),
                }
                reload.emit(());
            });
        }
    };
    let onsubmit = {
        let (name, password, role, apply) =
            (name.clone(), password.clone(), role.clone(), apply.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let form = UserForm {
                username: Some((*name).clone()),
                role: Some(*role),
                password: Some((*password).clone()).filter(|p| !p.is_empty()),
            };
            name.set(String::new());
            password.set(String::new());
            apply(Box::pin(async move {
                api::identity::create_user(&form).await.map(|_| ())
            }));
        })
    };
    let change_role = |username: String| {
        let apply = apply.clone();
        Callback::from(move |event: Event| {
            let value = event.target_unchecked_into::<HtmlSelectElement>().value();
            let form = UserForm {
                role: Role::parse(&value),
                ..UserForm::default()
            };
            let username = username.clone();
            apply(Box::pin(async move {
                api::identity::update_user(&username, &form)
                    .await
                    .map(|_| ())
            }));
        })
    };
    let reset_password = |username: String| {
        let apply = apply.clone();
        Callback::from(move |_: MouseEvent| {
            let Some(window) = web_sys::window() else {
                return;
            };
            let Ok(Some(password)) = window.prompt_with_message(&format!(
                "New password for {username} (at least 8 characters)"
            )) else {
                return;
            };
            let form = UserForm {
                password: Some(password),
                ..UserForm::default()
            };
            let username = username.clone();
            apply(Box::pin(async move {
                api::identity::update_user(&username, &form)
                    .await
                    .map(|_| ())
            }));
        })
    };
    let delete = |username: String| {
        let apply = apply.clone();
        Callback::from(move |_: MouseEvent| {
            let sure = web_sys::window()
                .and_then(|w| {
                    w.confirm_with_message(&format!("Delete user {username} and their tokens?"))
                        .ok()
                })
                .unwrap_or(false);
            if sure {
                let username = username.clone();
                apply(Box::pin(async move {
                    api::identity::delete_user(&username).await
                }));
            }
        })
    };
    let rows = match &*users {
        None => html! { <p class="hint">{ "Loading…" }</p> },
        Some(list) => html! {
            <div class="table-wrap">
                <table class="users responsive">
                    <thead><tr>
                        <th scope="col">{ "User" }</th><th scope="col">{ "Role" }</th>
                        <th scope="col">{ "Password" }</th><th scope="col">{ "Since" }</th><th></th>
                    </tr></thead>
                    <tbody>
                        { for list.iter().map(|user| html! {
                            <tr data-username={user.username.clone()}>
                                <td data-label="User">{ user.username.clone() }</td>
                                <td data-label="Role">
                                    <select aria-label={format!("Role of {}", user.username)}
                                        onchange={change_role(user.username.clone())}>
                                        { role_options(user.role) }
                                    </select>
                                </td>
                                <td data-label="Password">{ if user.has_password { "set" } else { "none (single sign-on)" } }</td>
                                <td data-label="Since">{ format::local_time(&user.created_at) }</td>
                                <td>
                                    <button class="small" onclick={reset_password(user.username.clone())}>{ "Set password" }</button>
                                    { " " }
                                    <button class="small danger" onclick={delete(user.username.clone())}>{ "Delete" }</button>
                                </td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </div>
        },
    };
    let on_text = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            state.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_new_role = {
        let role = role.clone();
        Callback::from(move |e: Event| {
            let value = e.target_unchecked_into::<HtmlSelectElement>().value();
            role.set(Role::parse(&value).unwrap_or(Role::Viewer));
        })
    };
    html! {
        <section>
            <h1>{ "Users" }</h1>
            <p class="hint">{ "Viewers read; members also run tests, cancel and re-run their own runs, \
                upload tests and reserve environments; admins do everything." }</p>
            <form class="inline-form" {onsubmit}>
                <label for="user-name">{ "User name" }</label>
                <input id="user-name" required=true value={(*name).clone()} oninput={on_text(&name)} />
                <label for="user-role">{ "Role" }</label>
                <select id="user-role" onchange={on_new_role}>{ role_options(*role) }</select>
                <label for="user-password">{ "Password" }</label>
                <input id="user-password" type="password" autocomplete="new-password"
                    placeholder="none: single sign-on only" value={(*password).clone()} oninput={on_text(&password)} />
                <button type="submit" class="primary">{ "Create user" }</button>
            </form>
            if let Some(error) = (*error).clone() {
                <FormError {error} known={&[] as &'static [&'static str]} />
            }
            { rows }
        </section>
    }
}
