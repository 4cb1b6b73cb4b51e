//! Webhooks: add one (URL, events, secret, body format), delete one, and
//! follow each one's delivery log live.

use shared::webhook::WEBHOOK_EVENTS;
use shared::{Delivery, DeliveryState, Input, NewWebhook, Webhook};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::components::form_error::FormError;
use crate::format;
use crate::hooks::use_polling::use_polling;

fn time_cell(at: Option<&chrono::DateTime<chrono::Utc>>) -> Html {
    match at {
        Some(at) => {
            html! { <time datetime={format::utc_time(at)}>{ format::local_time(at) }</time> }
        }
        None => html! { "—" },
    }
}

fn delivery_row(delivery: &Delivery) -> Html {
    let state = match delivery.state {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Failed => "failed",
    };
    let last = match (delivery.last_status, &delivery.last_error) {
        (_, Some(error)) => error.clone(),
        (Some(status), None) => format!("HTTP {status}"),
        (None, None) => "—".to_string(),
    };
    html! {
        <tr data-delivery-id={delivery.id.to_string()} data-state={state}>
            <td data-label="Event">{ format!("{} #{}", delivery.event, delivery.subject_id) }</td>
            <td data-label="At">{ time_cell(Some(&delivery.occurred_at)) }</td>
            <td data-label="State"><span class={classes!("badge", format!("delivery-{state}"))}>{ state }</span></td>
            <td data-label="Attempts">{ delivery.attempts }</td>
            <td data-label="Last answer">{ last }</td>
            <td data-label="Next attempt">{ time_cell(delivery.next_attempt_at.as_ref()) }</td>
            <td data-label="Delivered">{ time_cell(delivery.delivered_at.as_ref().or(delivery.failed_at.as_ref())) }</td>
        </tr>
    }
}

#[derive(Properties, PartialEq)]
struct DeliveryLogProps {
    webhook: i64,
}

#[component]
fn DeliveryLog(props: &DeliveryLogProps) -> Html {
    let log = use_polling(props.webhook, Some(2000), api::webhooks::deliveries);
    match (log.data(), log.error()) {
        (Some(list), _) if list.is_empty() => {
            html! { <p class="hint">{ "No deliveries yet." }</p> }
        }
        (Some(list), _) => html! {
            <div class="table-wrap">
                <table class="deliveries responsive">
                    <caption class="visually-hidden">{ "Deliveries" }</caption>
                    <thead><tr>
                        <th scope="col">{ "Event" }</th>
                        <th scope="col">{ "At" }</th>
                        <th scope="col">{ "State" }</th>
                        <th scope="col">{ "Attempts" }</th>
                        <th scope="col">{ "Last answer" }</th>
                        <th scope="col">{ "Next attempt" }</th>
                        <th scope="col">{ "Delivered / given up" }</th>
                    </tr></thead>
                    <tbody>{ for list.iter().map(delivery_row) }</tbody>
                </table>
            </div>
        },
        (None, Some(error)) => {
            html! { <p class="error" role="alert">{ error.message().to_string() }</p> }
        }
        (None, None) => html! { <p class="loading">{ "Loading deliveries…" }</p> },
    }
}

#[derive(Properties, PartialEq)]
struct WebhookCardProps {
    webhook: Webhook,
    on_deleted: Callback<()>,
}

#[component]
fn WebhookCard(props: &WebhookCardProps) -> Html {
    let webhook = &props.webhook;
    let error = use_state(|| None::<ApiError>);
    let delete = {
        let (id, error, done) = (webhook.id, error.clone(), props.on_deleted.clone());
        Callback::from(move |_| {
            let (error, done) = (error.clone(), done.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::webhooks::delete(id).await {
                    Ok(()) => done.emit(()),
                    Err(why) => error.set(Some(why)),
                }
            });
        })
    };
    html! {
        <article class="webhook card" data-webhook-id={webhook.id.to_string()}>
            <div class="page-head">
                <h2>{ webhook.url.clone() }</h2>
                <div class="actions">
                    <button class="button small danger" onclick={delete}>{ "Delete" }</button>
                </div>
            </div>
            <p class="hint">
                { format!("{} · {} · {}", webhook.events.join(", "), webhook.format.as_str(),
                    if webhook.signed { "signed" } else { "unsigned" }) }
                { format!(" · {} pending, {} given up", webhook.pending, webhook.failed) }
            </p>
            if let Some(why) = &*error {
                <p class="error" role="alert">{ why.message().to_string() }</p>
            }
            <DeliveryLog webhook={webhook.id} />
        </article>
    }
}

#[component]
pub fn WebhooksPage() -> Html {
    let webhooks = use_polling((), Some(2000), |()| api::webhooks::list());
    let url = use_state(String::new);
    let events = use_state(|| vec!["run.failed".to_string()]);
    let secret = use_state(String::new);
    let slack = use_state(|| false);
    let error = use_state(|| None::<ApiError>);
    let refresh = webhooks.refresh_callback();

    let on_url = {
        let url = url.clone();
        Callback::from(move |e: InputEvent| {
            url.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_secret = {
        let secret = secret.clone();
        Callback::from(move |e: InputEvent| {
            secret.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_format = {
        let slack = slack.clone();
        Callback::from(move |e: Event| {
            slack.set(e.target_unchecked_into::<HtmlSelectElement>().value() == "slack")
        })
    };
    let submit = {
        let (url, events, secret, slack, error, refresh) = (
            url.clone(),
            events.clone(),
            secret.clone(),
            slack.clone(),
            error.clone(),
            refresh.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let new = NewWebhook {
                url: Input::Given((*url).clone()),
                events: Input::Given((*events).clone()),
                secret: Input::Given(Some((*secret).clone()).filter(|s| !s.is_empty())),
                format: Input::Given(Some(if *slack { "slack" } else { "json" }.to_string())),
            };
            let (url, secret, error, refresh) =
                (url.clone(), secret.clone(), error.clone(), refresh.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::webhooks::create(&new).await {
                    Ok(_) => {
                        url.set(String::new());
                        secret.set(String::new());
                        error.set(None);
                        refresh.emit(());
                    }
                    Err(why) => error.set(Some(why)),
                }
            });
        })
    };
    let event_boxes = WEBHOOK_EVENTS.iter().map(|&event| {
        let checked = events.contains(&event.to_string());
        let events = events.clone();
        let toggle = Callback::from(move |_: Event| {
            let mut next: Vec<String> = (*events).clone();
            if let Some(at) = next.iter().position(|e| e == event) {
                next.remove(at);
            } else {
                next.push(event.to_string());
            }
            events.set(next);
        });
        html! {
            <label class="check">
                <input type="checkbox" name="events" value={event} {checked} onchange={toggle} />
                { event }
            </label>
        }
    });
    let field_error = |name: &str| {
        (*error)
            .as_ref()
            .and_then(|e| e.field(name))
            .map(|why| html! { <p class="field-error">{ why }</p> })
    };
    let list = match (webhooks.data(), webhooks.error()) {
        (Some(list), _) if list.is_empty() => html! { <p class="hint">{ "No webhooks yet." }</p> },
        (Some(list), _) => html! {
            { for list.iter().map(|w| html! {
                <WebhookCard key={w.id} webhook={w.clone()} on_deleted={refresh.clone()} />
            }) }
        },
        (None, Some(why)) => {
            html! { <p class="error" role="alert">{ why.message().to_string() }</p> }
        }
        (None, None) => html! { <p class="loading">{ "Loading webhooks…" }</p> },
    };
    html! {
        <section class="page webhooks-page">
            <div class="page-head"><h1>{ "Webhooks" }</h1></div>
            <form class="webhook-form card" onsubmit={submit}>
                <label>{ "URL" }
                    <input type="url" name="url" required=true placeholder="https://ci.example.com/hooks/tests"
                        value={(*url).clone()} oninput={on_url} />
                </label>
                { field_error("url") }
                <fieldset><legend>{ "Events" }</legend>{ for event_boxes }</fieldset>
                { field_error("events") }
                <label>{ "Secret (signs each delivery; optional)" }
                    <input type="password" name="secret" autocomplete="off" value={(*secret).clone()} oninput={on_secret} />
                </label>
                { field_error("secret") }
                <label>{ "Body" }
                    <select name="format" onchange={on_format}>
                        <option value="json" selected={!*slack}>{ "JSON" }</option>
                        <option value="slack" selected={*slack}>{ "Slack-compatible" }</option>
                    </select>
                </label>
                if let Some(why) = &*error {
                    <FormError error={why.clone()} known={&["url", "events", "secret"][..]} />
                }
                <button type="submit" class="button primary">{ "Add webhook" }</button>
            </form>
            { list }
        </section>
    }
}
