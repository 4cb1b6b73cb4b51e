//! A labelled form field with the server's (or our) complaint next to it.

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct FieldProps {
    /// The id of the control inside, which the label points at.
    pub id: AttrValue,
    pub label: AttrValue,
    #[prop_or_default]
    pub error: Option<String>,
    #[prop_or_default]
    pub hint: Option<AttrValue>,
    pub children: Html,
}

/// The id of a field's error message, for `aria-describedby`.
pub fn error_id(id: &str) -> String {
    format!("{id}-error")
}

#[component]
pub fn Field(props: &FieldProps) -> Html {
    html! {
        <div class={classes!("field", props.error.is_some().then_some("invalid"))}>
            <label for={props.id.clone()}>{ props.label.clone() }</label>
            { props.children.clone() }
            if let Some(hint) = &props.hint {
                <p class="hint">{ hint.clone() }</p>
            }
            if let Some(error) = &props.error {
                <p class="field-error" id={error_id(&props.id)} role="alert">{ error.clone() }</p>
            }
        </div>
    }
}
