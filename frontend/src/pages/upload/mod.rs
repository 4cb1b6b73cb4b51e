//! Adds a test file to the catalog: a file from the computer into an
//! existing or new directory. Shows the server's verdict, Python syntax
//! errors included, and offers to run the file at once.

mod fields;
mod state;
mod verdict;

use yew::prelude::*;

use crate::api;
use crate::components::form_error::FormError;
use crate::hooks::use_polling::use_polling;
use fields::UploadFields;
use state::{Action, UploadForm, KNOWN_FIELDS};
use verdict::UploadVerdict;

#[component]
pub fn UploadPage() -> Html {
    let form = use_reducer(UploadForm::default);
    let catalog = use_polling((), Some(5000), |()| api::catalog::list());
    let directories = catalog
        .data()
        .map(|c| c.directories.clone())
        .unwrap_or_default();

    let onsubmit = {
        let form = form.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if form.busy {
                return;
            }
            let (file, directory) = match form.checked() {
                Ok(checked) => checked,
                Err(problems) => return form.dispatch(Action::Refused(problems)),
            };
            form.dispatch(Action::Sending);
            let overwrite = form.overwrite;
            let form = form.dispatcher();
            wasm_bindgen_futures::spawn_local(async move {
                form.dispatch(
                    match api::catalog::upload(&directory, &file, overwrite).await {
                        Ok(file) => Action::Uploaded(file),
                        Err(why) => Action::Failed(why),
                    },
                );
            });
        })
    };

    html! {
        <section class="page upload-page">
            <h1>{ "Upload a test file" }</h1>
            <form {onsubmit} novalidate=true aria-label="Upload a test file">
                <UploadFields form={form.clone()} {directories} />
                if let Some(error) = form.form_error() {
                    <FormError error={error.clone()} known={KNOWN_FIELDS} />
                }
                <div class="actions">
                    <button type="submit" class="primary" disabled={form.busy}>
                        { if form.busy { "Uploading…" } else { "Upload" } }
                    </button>
                </div>
            </form>
            if let Some(file) = &form.uploaded {
                <UploadVerdict file={file.clone()} />
            }
        </section>
    }
}
