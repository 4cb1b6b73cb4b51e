//! Picks one of the environments, showing which are busy and how long
//! their queues are. Polls the list every second.

use shared::{Environment, EnvironmentState, MAX_ENVIRONMENT_ID, MIN_ENVIRONMENT_ID};
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::api;
use crate::components::field::error_id;
use crate::format;
use crate::hooks::use_polling::use_polling;

#[derive(Properties, PartialEq)]
pub struct EnvironmentPickerProps {
    pub id: AttrValue,
    pub value: i32,
    pub on_change: Callback<i32>,
    #[prop_or_default]
    pub invalid: bool,
}

fn option_label(environment: &Environment) -> String {
    let state = match (environment.state, &environment.hold, environment.queued) {
        (EnvironmentState::Held, Some(hold), 0) => format!("held by {}", hold.owner),
        (EnvironmentState::Held, Some(hold), queued) => {
            format!("held by {}, {queued} queued", hold.owner)
        }
        (state, _, 0) => format::environment_state(state).to_string(),
        (state, _, queued) => format!("{}, {queued} queued", format::environment_state(state)),
    };
    format!("{} · {} — {}", environment.id, environment.name, state)
}

#[component]
pub fn EnvironmentPicker(props: &EnvironmentPickerProps) -> Html {
    let environments = use_polling((), Some(1000), |()| api::environments::list());
    let onchange = {
        let on_change = props.on_change.clone();
        Callback::from(move |event: Event| {
            let select: HtmlSelectElement = event.target_unchecked_into();
            if let Ok(id) = select.value().parse::<i32>() {
                on_change.emit(id);
            }
        })
    };
    let options: Html = match environments.data() {
        Some(list) => {
            let known = list.iter().any(|e| e.id == props.value);
            html! {
                <>
                    if !known {
                        <option value={props.value.to_string()} selected=true>
                            { format!("{} · (no such environment)", props.value) }
                        </option>
                    }
                    { for list.iter().map(|environment| html! {
                        <option key={environment.id} value={environment.id.to_string()}
                            selected={environment.id == props.value}>
                            { option_label(environment) }
                        </option>
                    }) }
                </>
            }
        }
        None => (MIN_ENVIRONMENT_ID..=MAX_ENVIRONMENT_ID)
            .map(|id| {
                html! {
                    <option key={id} value={id.to_string()} selected={id == props.value}>
                        { format!("{id} · env-{id}") }
                    </option>
                }
            })
            .collect(),
    };
    html! {
        <select id={props.id.clone()} {onchange}
            aria-invalid={props.invalid.then_some("true")}
            aria-describedby={props.invalid.then(|| error_id(&props.id))}>
            { options }
        </select>
    }
}
