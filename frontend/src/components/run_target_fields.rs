//! Who starts a run and where: the two fields every form that starts a run
//! has (the second one environment, or any free one with a label), each
//! with the server's complaint next to it, which editing the field takes
//! back.

use shared::RunTarget;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::api::ApiError;
use crate::components::environment_picker::EnvironmentPicker;
use crate::components::field::{error_id, Field};
use crate::hooks::use_start_run::forget_field;

#[derive(Properties, PartialEq)]
pub struct RunTargetFieldsProps {
    /// Element ids of the two controls (several forms may share a page).
    pub username_id: AttrValue,
    pub environment_field_id: AttrValue,
    pub username: UseStateHandle<String>,
    pub target: UseStateHandle<RunTarget>,
    /// The server's last refusal of the form.
    pub error: UseStateHandle<Option<ApiError>>,
}

#[component]
pub fn RunTargetFields(props: &RunTargetFieldsProps) -> Html {
    let oninput = {
        let username = props.username.clone();
        let forget = forget_field(&props.error, "username");
        Callback::from(move |event: InputEvent| {
            username.set(event.target_unchecked_into::<HtmlInputElement>().value());
            forget();
        })
    };
    let on_environment = {
        let target = props.target.clone();
        let forget_id = forget_field(&props.error, "environment_id");
        let error = props.error.clone();
        Callback::from(move |chosen| {
            target.set(chosen);
            forget_id();
            error.set(
                error
                    .as_ref()
                    .and_then(|e| e.without_field("environment_label")),
            );
        })
    };
    let field_error = |name: &str| props.error.as_ref().and_then(|e| e.field(name));
    let username_error = field_error("username");
    let environment_error =
        field_error("environment_id").or_else(|| field_error("environment_label"));
    html! {
        <div class="row">
            <Field id={props.username_id.clone()} label="Your name" error={username_error.clone()}>
                <input id={props.username_id.clone()} name="username" type="text"
                    autocomplete="username" value={(*props.username).clone()} {oninput}
                    aria-invalid={username_error.is_some().then_some("true")}
                    aria-describedby={username_error.is_some().then(|| error_id(&props.username_id))} />
            </Field>
            <Field id={props.environment_field_id.clone()} label="Environment"
                error={environment_error.clone()}>
                <EnvironmentPicker id={props.environment_field_id.clone()} value={(*props.target).clone()}
                    on_change={on_environment} invalid={environment_error.is_some()} />
            </Field>
        </div>
    }
}
