//! The audit log (admins only): who changed what, and failed logins,
//! newest first, filtered by actor and action.

use shared::AuditPage as Page;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::components::form_error::FormError;
use crate::format;

#[component]
pub fn AuditPage() -> Html {
    let actor = use_state(String::new);
    let action = use_state(String::new);
    let page = use_state(|| 1_i64);
    let shown = use_state(|| None::<Page>);
    let error = use_state(|| None::<ApiError>);
    // The filters as last applied: (actor, action, page).
    let applied = use_state(|| (String::new(), String::new(), 1_i64));
    {
        let (shown, error) = (shown.clone(), error.clone());
        use_effect_with((*applied).clone(), move |(actor, action, page)| {
            let (actor, action, page) = (actor.clone(), action.clone(), *page);
            spawn_local(async move {
                match api::identity::audit(&actor, &action, page).await {
                    Ok(answer) => {
                        error.set(None);
                        shown.set(Some(answer));
                    }
                    Err(why) => error.set(Some(why)),
                }
            });
        });
    }
    let onsubmit = {
        let (actor, action, page, applied) =
            (actor.clone(), action.clone(), page.clone(), applied.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            page.set(1);
            applied.set(((*actor).clone(), (*action).clone(), 1));
        })
    };
    let go = |to: i64| {
        let (page, applied) = (page.clone(), applied.clone());
        Callback::from(move |_: MouseEvent| {
            page.set(to);
            let (actor, action, _) = (*applied).clone();
            applied.set((actor, action, to));
        })
    };
    let on_text = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            state.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let body = match &*shown {
        None => html! { <p class="hint">{ "Loading…" }</p> },
        Some(answer) if answer.items.is_empty() => html! { <p class="hint">{ "No entries." }</p> },
        Some(answer) => {
            let last = (answer.total + answer.per_page - 1) / answer.per_page;
            html! {
                <>
                    <p class="hint">{ format!("{}; page {} of {}", format::count(answer.total, "entry", "entries"), answer.page, last.max(1)) }</p>
                    <div class="table-wrap">
                        <table class="audit responsive">
                            <thead><tr>
                                <th scope="col">{ "When" }</th><th scope="col">{ "Actor" }</th>
                                <th scope="col">{ "Action" }</th><th scope="col">{ "Target" }</th>
                                <th scope="col">{ "Detail" }</th>
                            </tr></thead>
                            <tbody>
                                { for answer.items.iter().map(|entry| html! {
                                    <tr class="audit-entry" data-action={entry.action.clone()}>
                                        <td data-label="When">{ format::local_time(&entry.at) }</td>
                                        <td data-label="Actor">{ entry.actor.clone() }</td>
                                        <td data-label="Action"><code>{ entry.action.clone() }</code></td>
                                        <td data-label="Target">{ entry.target.clone() }</td>
                                        <td data-label="Detail">{ entry.detail.clone() }</td>
                                    </tr>
                                }) }
                            </tbody>
                        </table>
                    </div>
                    <nav class="pagination" aria-label="Audit pages">
                        if answer.page > 1 {
                            <button class="small" onclick={go(answer.page - 1)}>{ "Newer" }</button>
                        }
                        if answer.page < last {
                            <button class="small" onclick={go(answer.page + 1)}>{ "Older" }</button>
                        }
                    </nav>
                </>
            }
        }
    };
    html! {
        <section>
            <h1>{ "Audit log" }</h1>
            <form class="inline-form filters" {onsubmit}>
                <label for="audit-actor">{ "Actor" }</label>
                <input id="audit-actor" type="search" placeholder="anyone" value={(*actor).clone()} oninput={on_text(&actor)} />
                <label for="audit-action">{ "Action" }</label>
                <input id="audit-action" type="search" placeholder="run.create, environment, auth…"
                    value={(*action).clone()} oninput={on_text(&action)} />
                <button type="submit" class="primary">{ "Filter" }</button>
            </form>
            if let Some(error) = (*error).clone() {
                <FormError {error} known={&[] as &'static [&'static str]} />
            }
            { body }
        </section>
    }
}
