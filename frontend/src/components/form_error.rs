//! The server's refusal of a form at form level: its message, and its
//! complaints about fields the form has no place for.

use yew::prelude::*;

use crate::api::ApiError;

#[derive(Properties, PartialEq)]
pub struct FormErrorProps {
    pub error: ApiError,
    /// The fields the form shows complaints next to: left out here.
    pub known: &'static [&'static str],
}

#[component]
pub fn FormError(props: &FormErrorProps) -> Html {
    html! {
        <div class="error" role="alert">
            <p>{ props.error.message().to_string() }</p>
            { for props.error.other_fields(props.known).into_iter().map(|(field, why)| html! {
                <p>{ format!("{field}: {why}") }</p>
            }) }
        </div>
    }
}
