//! The variables table of the environment form: one row of name and value
//! per variable, each removable, and a button for one more.

use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::state::{VariableEdit, VariablePart};

#[derive(Properties, PartialEq)]
pub struct VariablesEditorProps {
    pub variables: Vec<(String, String)>,
    /// What is wrong with the variables as a whole (a name given twice, a
    /// bad name, too many).
    #[prop_or_default]
    pub error: Option<String>,
    pub on_edit: Callback<VariableEdit>,
}

#[component]
pub fn VariablesEditor(props: &VariablesEditorProps) -> Html {
    let set = |index: usize, part: VariablePart| {
        props
            .on_edit
            .reform(move |event: InputEvent| VariableEdit::Set {
                index,
                part,
                value: event.target_unchecked_into::<HtmlInputElement>().value(),
            })
    };
    let remove = |index: usize| {
        props
            .on_edit
            .reform(move |_: MouseEvent| VariableEdit::Remove(index))
    };
    let add = props.on_edit.reform(|_: MouseEvent| VariableEdit::Add);
    html! {
        <fieldset class={classes!("variables", props.error.is_some().then_some("invalid"))}>
            <legend>{ "Variables" }</legend>
            <p class="hint">{ "Passed to the tests as environment variables. Names: letters, digits and _, not starting with a digit." }</p>
            { for props.variables.iter().enumerate().map(|(index, (name, value))| html! {
                <div class="variable" key={index}>
                    <input type="text" placeholder="NAME" value={name.clone()}
                        aria-label={format!("Name of variable {}", index + 1)}
                        oninput={set(index, VariablePart::Name)} />
                    <input type="text" placeholder="value" value={value.clone()}
                        aria-label={format!("Value of variable {}", index + 1)}
                        oninput={set(index, VariablePart::Value)} />
                    <button type="button" class="remove" onclick={remove(index)}
                        aria-label={format!("Remove variable {}", if name.is_empty() { (index + 1).to_string() } else { name.clone() })}>
                        { "✕" }
                    </button>
                </div>
            }) }
            <button type="button" onclick={add}>{ "Add variable" }</button>
            if let Some(why) = &props.error {
                <p class="field-error" role="alert">{ why.clone() }</p>
            }
        </fieldset>
    }
}
