//! The upload form as one state and the actions that change it: the
//! chosen file and directory, what is wrong with them, and the server's
//! verdict. Pure, so every transition is tested without a browser.

use std::rc::Rc;

use shared::{validate, UploadedFile};
use web_sys::File;
use yew::Reducible;

use crate::api::ApiError;

/// The fields the form shows complaints next to, as the API names them.
pub const KNOWN_FIELDS: &[&str] = &["file", "directory"];

/// Problems found before sending, by field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalErrors {
    pub file: Option<String>,
    pub directory: Option<String>,
}

/// The directory to send, as the server will read it, or what is wrong
/// with the file's name and the directory: the rules shared with the
/// server give feedback before sending.
pub fn check(file_name: Option<&str>, directory: &str) -> Result<String, LocalErrors> {
    let file = match file_name {
        None => Err("choose a test file (test_*.py or *_test.py)".to_string()),
        Some(name) => validate::upload_file_name(name).map(drop),
    };
    match (file, validate::upload_directory(directory)) {
        (Ok(()), Ok(directory)) => Ok(directory),
        (file, directory) => Err(LocalErrors {
            file: file.err(),
            directory: directory.err(),
        }),
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadForm {
    pub file: Option<File>,
    pub directory: String,
    pub overwrite: bool,
    pub local: LocalErrors,
    /// The server's last refusal.
    pub error: Option<ApiError>,
    /// The server's answer to the last upload that succeeded.
    pub uploaded: Option<UploadedFile>,
    /// An upload is under way.
    pub busy: bool,
}

pub enum Action {
    /// A new file is a new question: the last verdict goes.
    ChoseFile(Option<File>),
    /// Takes back what was said about the directory, and only that.
    EditDirectory(String),
    SetOverwrite(bool),
    /// The form failed the local checks: nothing was sent.
    Refused(LocalErrors),
    Sending,
    Uploaded(UploadedFile),
    Failed(ApiError),
}

impl UploadForm {
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::ChoseFile(file) => {
                self.file = file;
                self.uploaded = None;
                self.error = None;
                self.local = LocalErrors::default();
            }
            Action::EditDirectory(directory) => {
                self.directory = directory;
                self.error = self
                    .error
                    .as_ref()
                    .and_then(|e| e.without_field("directory"));
                self.local.directory = None;
            }
            Action::SetOverwrite(overwrite) => self.overwrite = overwrite,
            Action::Refused(problems) => {
                self.local = problems;
                self.error = None;
            }
            Action::Sending => {
                self.local = LocalErrors::default();
                self.busy = true;
                self.error = None;
                self.uploaded = None;
            }
            Action::Uploaded(file) => {
                self.uploaded = Some(file);
                self.busy = false;
            }
            Action::Failed(error) => {
                self.error = Some(error);
                self.busy = false;
            }
        }
    }

    /// The chosen file and the directory to send it to, checked.
    pub fn checked(&self) -> Result<(File, String), LocalErrors> {
        let name = self.file.as_ref().map(File::name);
        let directory = check(name.as_deref(), &self.directory)?;
        match &self.file {
            Some(file) => Ok((file.clone(), directory)),
            // `check` already refused a missing file.
            None => Err(LocalErrors::default()),
        }
    }

    fn server(&self, name: &str) -> Option<String> {
        self.error.as_ref().and_then(|e| e.field(name))
    }

    /// What is wrong with the file. A conflict is about the file too: one
    /// of that name exists already.
    pub fn file_error(&self) -> Option<String> {
        self.local
            .file
            .clone()
            .or_else(|| self.server("file"))
            .or_else(|| {
                self.error.as_ref().filter(|e| e.status == 409).map(|e| {
                    format!(
                        "{} Tick “Replace an existing file” to overwrite it.",
                        e.message()
                    )
                })
            })
    }

    pub fn directory_error(&self) -> Option<String> {
        self.local
            .directory
            .clone()
            .or_else(|| self.server("directory"))
    }

    /// The server's refusal when neither field shows it.
    pub fn form_error(&self) -> Option<&ApiError> {
        self.error.as_ref().filter(|e| {
            e.status != 409 && self.server("file").is_none() && self.server("directory").is_none()
        })
    }
}

impl Reducible for UploadForm {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = Rc::unwrap_or_clone(self);
        next.apply(action);
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{ErrorCode, FieldErrors};
    use wasm_bindgen_test::wasm_bindgen_test;

    fn uploaded(path: &str) -> UploadedFile {
        UploadedFile {
            path: path.into(),
            directory: "uploads".into(),
            name: "test_a.py".into(),
            size: 12,
            modified_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn refusal(fields: &[(&str, &str)]) -> ApiError {
        let mut error = ApiError::new(422, ErrorCode::Validation, "invalid upload");
        error.body.error.fields = Some(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<FieldErrors>(),
        );
        error
    }

    fn applied(actions: Vec<Action>) -> UploadForm {
        let mut form = UploadForm::default();
        for action in actions {
            form.apply(action);
        }
        form
    }

    #[wasm_bindgen_test]
    fn the_check_names_every_problem_before_sending() {
        assert_eq!(
            check(Some("test_a.py"), " uploads/new/ "),
            Ok("uploads/new".to_string())
        );
        assert_eq!(check(Some("test_a.py"), ""), Ok(String::new()));
        let both = check(None, "../up").err().unwrap_or_default();
        assert!(both
            .file
            .is_some_and(|why| why.starts_with("choose a test file")));
        assert!(both.directory.is_some());
        let name = check(Some("notes.txt"), "uploads")
            .err()
            .unwrap_or_default();
        assert_eq!(
            (name.file.is_some(), name.directory.is_none()),
            (true, true)
        );
    }

    #[wasm_bindgen_test]
    fn without_a_file_nothing_is_sent() {
        let form = applied(vec![Action::EditDirectory("uploads".into())]);
        let problems = form.checked().err().unwrap_or_default();
        assert!(problems.file.is_some() && problems.directory.is_none());
    }

    #[wasm_bindgen_test]
    fn an_upload_replaces_the_last_verdict_and_a_new_file_clears_it() {
        let mut form = applied(vec![
            Action::Uploaded(uploaded("uploads/test_a.py")),
            Action::Sending,
        ]);
        assert!(form.busy && form.uploaded.is_none());
        form.apply(Action::Uploaded(uploaded("uploads/test_b.py")));
        assert!(!form.busy);
        assert_eq!(
            form.uploaded.as_ref().map(|f| f.path.as_str()),
            Some("uploads/test_b.py")
        );
        form.apply(Action::Failed(refusal(&[("file", "bad")])));
        form.apply(Action::ChoseFile(None));
        assert_eq!(form.uploaded, None);
        assert_eq!(form.error, None);
    }

    #[wasm_bindgen_test]
    fn editing_the_directory_takes_back_only_what_was_said_about_it() {
        let mut form = applied(vec![
            Action::Refused(LocalErrors {
                file: Some("choose".into()),
                directory: Some("too deep".into()),
            }),
            Action::EditDirectory("a".into()),
        ]);
        assert_eq!(form.local.file.as_deref(), Some("choose"));
        assert_eq!(form.directory_error(), None);
        form.apply(Action::Sending);
        form.apply(Action::Failed(refusal(&[
            ("directory", "not allowed"),
            ("file", "syntax error on line 4"),
        ])));
        assert_eq!(form.directory_error().as_deref(), Some("not allowed"));
        form.apply(Action::EditDirectory("b".into()));
        assert_eq!(form.directory_error(), None);
        assert_eq!(form.file_error().as_deref(), Some("syntax error on line 4"));
    }

    #[wasm_bindgen_test]
    fn a_conflict_is_shown_at_the_file_with_the_way_out() {
        let form = applied(vec![Action::Failed(ApiError::new(
            409,
            ErrorCode::Conflict,
            "uploads/test_a.py exists already.",
        ))]);
        assert_eq!(
            form.file_error().as_deref(),
            Some("uploads/test_a.py exists already. Tick “Replace an existing file” to overwrite it.")
        );
        assert_eq!(form.form_error(), None);
    }

    #[wasm_bindgen_test]
    fn other_refusals_are_shown_at_form_level() {
        let form = applied(vec![Action::Failed(ApiError::new(
            413,
            ErrorCode::TooLarge,
            "the file is over 1 MiB",
        ))]);
        assert_eq!(
            form.form_error().map(ApiError::message),
            Some("the file is over 1 MiB")
        );
        assert_eq!(form.file_error(), None);
        let local = applied(vec![Action::Refused(LocalErrors {
            file: None,
            directory: Some("too deep".into()),
        })]);
        assert_eq!(local.error, None);
        assert_eq!(local.directory_error().as_deref(), Some("too deep"));
    }
}
