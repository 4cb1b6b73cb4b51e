//! The delete button of an existing environment, which asks once before
//! it deletes.

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct DeleteControlsProps {
    /// Delete was pressed once: now the question and its two answers.
    pub confirming: bool,
    pub busy: bool,
    pub on_ask: Callback<MouseEvent>,
    pub on_delete: Callback<MouseEvent>,
    pub on_keep: Callback<MouseEvent>,
}

#[component]
pub fn DeleteControls(props: &DeleteControlsProps) -> Html {
    html! {
        <>
            <span class="spacer"></span>
            if props.confirming {
                <span class="confirm" role="alert">{ "Delete this environment?" }</span>
                <button type="button" class="danger" onclick={props.on_delete.clone()} disabled={props.busy}>{ "Yes, delete" }</button>
                <button type="button" onclick={props.on_keep.clone()}>{ "Keep it" }</button>
            } else {
                <button type="button" class="danger" onclick={props.on_ask.clone()} disabled={props.busy}>{ "Delete" }</button>
            }
        </>
    }
}
