//! The environment form's own fields: id (when creating), name,
//! description, labels and run time-out, each with its complaint next to it.

use web_sys::{HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;

use super::state::{Action, DraftField, EnvironmentForm};
use crate::components::field::{error_id, Field};

#[derive(Properties, PartialEq)]
pub struct DetailsFieldsProps {
    pub form: UseReducerHandle<EnvironmentForm>,
    pub creating: bool,
}

#[component]
pub fn DetailsFields(props: &DetailsFieldsProps) -> Html {
    let form = &props.form;
    let edit = |field: DraftField| {
        let form = form.dispatcher();
        Callback::from(move |event: InputEvent| {
            let value = match event.target_dyn_into::<HtmlTextAreaElement>() {
                Some(area) => area.value(),
                None => event.target_unchecked_into::<HtmlInputElement>().value(),
            };
            form.dispatch(Action::Edit(field, value));
        })
    };
    // `aria-invalid` and `aria-describedby` of a control, from the API's
    // name of its field and the control's id.
    let invalid = |name: &str, id: &str| {
        let problem = form.problem(name).is_some();
        (problem.then_some("true"), problem.then(|| error_id(id)))
    };
    let (id_invalid, id_described) = invalid("id", "env-id");
    let (name_invalid, name_described) = invalid("name", "env-name");
    let (description_invalid, description_described) = invalid("description", "env-description");
    let (timeout_invalid, timeout_described) = invalid("run_timeout_secs", "env-timeout");
    let (labels_invalid, labels_described) = invalid("labels", "env-labels");
    let draft = &form.draft;
    html! {
        <>
            if props.creating {
                <Field id="env-id" label="Id (1 to 100)" error={form.problem("id")}>
                    <input id="env-id" type="number" min="1" max="100" inputmode="numeric"
                        value={draft.id.clone()} oninput={edit(DraftField::Id)}
                        aria-invalid={id_invalid} aria-describedby={id_described} />
                </Field>
            }
            <Field id="env-name" label="Name" error={form.problem("name")}>
                <input id="env-name" type="text" value={draft.name.clone()} oninput={edit(DraftField::Name)}
                    aria-invalid={name_invalid} aria-describedby={name_described} />
            </Field>
            <Field id="env-description" label="Description" error={form.problem("description")}>
                <textarea id="env-description" rows="3" value={draft.description.clone()}
                    oninput={edit(DraftField::Description)}
                    aria-invalid={description_invalid} aria-describedby={description_described} />
            </Field>
            <Field id="env-labels" label="Labels" error={form.problem("labels")}
                hint={AttrValue::Static("What kind of environment it is (staging, eu, …), separated by commas or spaces: a-z, 0-9, _ and -, up to 32 characters each.")}>
                <input id="env-labels" type="text" value={draft.labels.clone()} oninput={edit(DraftField::Labels)}
                    autocapitalize="none" spellcheck="false"
                    aria-invalid={labels_invalid} aria-describedby={labels_described} />
            </Field>
            <Field id="env-timeout" label="Run time-out in seconds" error={form.problem("run_timeout_secs")}
                hint={AttrValue::Static("Empty: the service's default.")}>
                <input id="env-timeout" type="number" min="1" inputmode="numeric" placeholder="default"
                    value={draft.timeout.clone()} oninput={edit(DraftField::Timeout)}
                    aria-invalid={timeout_invalid} aria-describedby={timeout_described} />
            </Field>
        </>
    }
}
