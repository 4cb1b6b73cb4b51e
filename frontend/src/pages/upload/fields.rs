//! What the upload form asks: the file, the directory it goes to (with the
//! known directories to pick from) and whether it may replace one.

use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::state::{Action, UploadForm};
use crate::components::field::{error_id, Field};

#[derive(Properties, PartialEq)]
pub struct UploadFieldsProps {
    pub form: UseReducerHandle<UploadForm>,
    /// The catalog's directories, offered while typing one.
    pub directories: Vec<String>,
}

#[component]
pub fn UploadFields(props: &UploadFieldsProps) -> Html {
    let form = &props.form;
    let actions = form.dispatcher().to_callback();
    let on_file = actions.reform(|event: Event| {
        let input: HtmlInputElement = event.target_unchecked_into();
        Action::ChoseFile(input.files().and_then(|files| files.get(0)))
    });
    let on_directory = actions.reform(|event: InputEvent| {
        Action::EditDirectory(event.target_unchecked_into::<HtmlInputElement>().value())
    });
    let on_overwrite = actions.reform(|event: Event| {
        Action::SetOverwrite(event.target_unchecked_into::<HtmlInputElement>().checked())
    });
    let file_error = form.file_error();
    let directory_error = form.directory_error();
    html! {
        <>
            <Field id="upload-file" label="Test file" error={file_error.clone()}
                hint={AttrValue::Static("A Python file named test_*.py or *_test.py, up to 1 MiB.")}>
                <input id="upload-file" type="file" accept=".py,text/x-python"
                    onchange={on_file}
                    aria-invalid={file_error.is_some().then_some("true")}
                    aria-describedby={file_error.is_some().then(|| error_id("upload-file"))} />
            </Field>
            <Field id="upload-directory" label="Directory" error={directory_error.clone()}
                hint={AttrValue::Static("Pick an existing directory or type a new one, e.g. uploads/payments; empty for the top level.")}>
                <input id="upload-directory" type="text" list="known-directories"
                    placeholder="uploads/my-tests" value={form.directory.clone()} oninput={on_directory}
                    autocomplete="off"
                    aria-invalid={directory_error.is_some().then_some("true")}
                    aria-describedby={directory_error.is_some().then(|| error_id("upload-directory"))} />
                <datalist id="known-directories">
                    { for props.directories.iter().map(|dir| html! { <option key={dir.clone()} value={dir.clone()} /> }) }
                </datalist>
            </Field>
            <div class="field checkbox">
                <input id="upload-overwrite" type="checkbox" checked={form.overwrite} onchange={on_overwrite} />
                <label for="upload-overwrite">{ "Replace an existing file of the same name" }</label>
            </div>
        </>
    }
}
