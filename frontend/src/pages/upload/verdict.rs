//! The server's yes to an upload: where the file now is, and a form to run
//! it at once.

use shared::UploadedFile;
use yew::prelude::*;

use crate::components::quick_run::QuickRun;

#[derive(Properties, PartialEq)]
pub struct UploadVerdictProps {
    pub file: UploadedFile,
}

#[component]
pub fn UploadVerdict(props: &UploadVerdictProps) -> Html {
    let file = &props.file;
    html! {
        <div class="verdict success" role="status">
            <h2>{ "Uploaded" }</h2>
            <p>
                <code class="uploaded-path">{ file.path.clone() }</code>
                { format!(" ({} bytes) is in the catalog.", file.size) }
            </p>
            <QuickRun paths={vec![file.path.clone()]} />
        </div>
    }
}
