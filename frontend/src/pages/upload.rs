//! Adds a test file to the catalog: a file from the computer into an
//! existing or new directory. Shows the server's verdict, Python syntax
//! errors included, and offers to run the file at once.

use shared::{validate, UploadedFile};
use web_sys::{File, HtmlInputElement};
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::components::field::{error_id, Field};
use crate::components::quick_run::QuickRun;
use crate::hooks::use_polling::use_polling;

/// Problems found before sending, by field.
#[derive(Debug, Clone, Default, PartialEq)]
struct LocalErrors {
    file: Option<String>,
    directory: Option<String>,
}

#[component]
pub fn UploadPage() -> Html {
    let file = use_state(|| None::<File>);
    let directory = use_state(String::new);
    let overwrite = use_state(|| false);
    let local = use_state(LocalErrors::default);
    let error = use_state(|| None::<ApiError>);
    let uploaded = use_state(|| None::<UploadedFile>);
    let busy = use_state(|| false);
    let file_input = use_node_ref();
    let catalog = use_polling((), Some(5000), |()| api::catalog::list());
    let directories = catalog
        .data()
        .map(|c| c.directories.clone())
        .unwrap_or_default();

    // A new file or directory is a new question: the last verdict goes.
    let on_file = {
        let file = file.clone();
        let uploaded = uploaded.clone();
        let error = error.clone();
        let local = local.clone();
        Callback::from(move |event: Event| {
            let input: HtmlInputElement = event.target_unchecked_into();
            file.set(input.files().and_then(|files| files.get(0)));
            uploaded.set(None);
            error.set(None);
            local.set(LocalErrors::default());
        })
    };
    let on_directory = {
        let directory = directory.clone();
        let error = error.clone();
        let local = local.clone();
        Callback::from(move |event: InputEvent| {
            directory.set(event.target_unchecked_into::<HtmlInputElement>().value());
            error.set(error.as_ref().and_then(|e| e.without_field("directory")));
            local.set(LocalErrors {
                directory: None,
                ..(*local).clone()
            });
        })
    };
    let on_overwrite = {
        let overwrite = overwrite.clone();
        Callback::from(move |event: Event| {
            overwrite.set(event.target_unchecked_into::<HtmlInputElement>().checked())
        })
    };
    let onsubmit = {
        let file = file.clone();
        let directory = directory.clone();
        let overwrite = overwrite.clone();
        let local = local.clone();
        let error = error.clone();
        let uploaded = uploaded.clone();
        let busy = busy.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if *busy {
                return;
            }
            // The rules shared with the server give feedback before sending.
            let checked_dir = validate::upload_directory(&directory);
            let checked_file = match &*file {
                None => Err("choose a test file (test_*.py or *_test.py)".to_string()),
                Some(chosen) => validate::upload_file_name(&chosen.name()).map(|_| chosen.clone()),
            };
            let problems = LocalErrors {
                file: checked_file.as_ref().err().cloned(),
                directory: checked_dir.as_ref().err().cloned(),
            };
            local.set(problems);
            let (Ok(chosen), Ok(dir)) = (checked_file, checked_dir) else {
                error.set(None);
                return;
            };
            busy.set(true);
            error.set(None);
            uploaded.set(None);
            let overwrite = *overwrite;
            let error = error.clone();
            let uploaded = uploaded.clone();
            let busy = busy.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match api::catalog::upload(&dir, &chosen, overwrite).await {
                    Ok(file) => uploaded.set(Some(file)),
                    Err(why) => error.set(Some(why)),
                }
                busy.set(false);
            });
        })
    };

    let server = |name: &str| error.as_ref().and_then(|e| e.field(name));
    let file_error = local.file.clone().or_else(|| server("file"));
    let directory_error = local.directory.clone().or_else(|| server("directory"));
    // A conflict is about the file: it exists already.
    let conflict = error.as_ref().filter(|e| e.status == 409).map(|e| {
        format!(
            "{} Tick “Replace an existing file” to overwrite it.",
            e.message()
        )
    });
    let file_error = file_error.or(conflict.clone());
    let form_error = error
        .as_ref()
        .filter(|e| e.status != 409 && server("file").is_none() && server("directory").is_none());

    html! {
        <section class="page upload-page">
            <h1>{ "Upload a test file" }</h1>
            <form {onsubmit} novalidate=true aria-label="Upload a test file">
                <Field id="upload-file" label="Test file" error={file_error.clone()}
                    hint={AttrValue::Static("A Python file named test_*.py or *_test.py, up to 1 MiB.")}>
                    <input id="upload-file" type="file" accept=".py,text/x-python" ref={file_input}
                        onchange={on_file}
                        aria-invalid={file_error.is_some().then_some("true")}
                        aria-describedby={file_error.is_some().then(|| error_id("upload-file"))} />
                </Field>
                <Field id="upload-directory" label="Directory" error={directory_error.clone()}
                    hint={AttrValue::Static("Pick an existing directory or type a new one, e.g. uploads/payments; empty for the top level.")}>
                    <input id="upload-directory" type="text" list="known-directories"
                        placeholder="uploads/my-tests" value={(*directory).clone()} oninput={on_directory}
                        autocomplete="off"
                        aria-invalid={directory_error.is_some().then_some("true")}
                        aria-describedby={directory_error.is_some().then(|| error_id("upload-directory"))} />
                    <datalist id="known-directories">
                        { for directories.iter().map(|dir| html! { <option key={dir.clone()} value={dir.clone()} /> }) }
                    </datalist>
                </Field>
                <div class="field checkbox">
                    <input id="upload-overwrite" type="checkbox" checked={*overwrite} onchange={on_overwrite} />
                    <label for="upload-overwrite">{ "Replace an existing file of the same name" }</label>
                </div>
                if let Some(error) = form_error {
                    <div class="error" role="alert">
                        <p>{ error.message().to_string() }</p>
                        { for error.other_fields(&["file", "directory"]).into_iter().map(|(field, why)| html! {
                            <p>{ format!("{field}: {why}") }</p>
                        }) }
                    </div>
                }
                <div class="actions">
                    <button type="submit" class="primary" disabled={*busy}>
                        { if *busy { "Uploading…" } else { "Upload" } }
                    </button>
                </div>
            </form>
            if let Some(file) = &*uploaded {
                <div class="verdict success" role="status">
                    <h2>{ "Uploaded" }</h2>
                    <p>
                        <code class="uploaded-path">{ file.path.clone() }</code>
                        { format!(" ({} bytes) is in the catalog.", file.size) }
                    </p>
                    <QuickRun paths={vec![file.path.clone()]} />
                </div>
            }
        </section>
    }
}
