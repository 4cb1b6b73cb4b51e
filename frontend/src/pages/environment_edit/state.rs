//! The environment form as one state and the actions that change it: what
//! the user typed, what is wrong with it, and where saving or deleting
//! stands. Pure, so every transition is tested without a browser.

use std::collections::BTreeMap;
use std::rc::Rc;

use shared::{
    validate, Environment, EnvironmentSettings, Input, NewEnvironment, UpdateEnvironment,
    MAX_ENVIRONMENT_ID, MIN_ENVIRONMENT_ID,
};
use yew::Reducible;

use crate::api::ApiError;
use crate::sort::sort_by;

/// The fields the form shows on their own, as the API names them; a
/// server complaint about any other field is shown at form level.
pub const KNOWN_FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "run_timeout_secs",
    "variables",
    "labels",
];

/// The form's contents, as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub id: String,
    pub name: String,
    pub description: String,
    pub timeout: String,
    /// Labels as typed, separated by commas or spaces.
    pub labels: String,
    /// Name and value, in the order shown; empty rows are allowed while
    /// typing and skipped when saving.
    pub variables: Vec<(String, String)>,
}

/// One of the draft's text fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftField {
    Id,
    Name,
    Description,
    Timeout,
    Labels,
}

/// Which half of a variable row an edit is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariablePart {
    Name,
    Value,
}

/// A change to the variables table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableEdit {
    Add,
    Remove(usize),
    Set {
        index: usize,
        part: VariablePart,
        value: String,
    },
}

impl Draft {
    pub fn from_environment(environment: &Environment) -> Draft {
        Draft {
            id: environment.id.to_string(),
            name: environment.name.clone(),
            description: environment.description.clone(),
            timeout: environment
                .run_timeout_secs
                .map(|secs| secs.to_string())
                .unwrap_or_default(),
            labels: environment.labels.join(", "),
            variables: environment
                .variables
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    fn set(&mut self, field: DraftField, value: String) {
        let slot = match field {
            DraftField::Id => &mut self.id,
            DraftField::Name => &mut self.name,
            DraftField::Description => &mut self.description,
            DraftField::Timeout => &mut self.timeout,
            DraftField::Labels => &mut self.labels,
        };
        *slot = value;
    }

    /// An index past the end is ignored: an event from a row that has just
    /// been removed must not touch another.
    fn edit_variables(&mut self, edit: VariableEdit) {
        match edit {
            VariableEdit::Add => self.variables.push((String::new(), String::new())),
            VariableEdit::Remove(index) => {
                if index < self.variables.len() {
                    self.variables.remove(index);
                }
            }
            VariableEdit::Set { index, part, value } => {
                if let Some(pair) = self.variables.get_mut(index) {
                    match part {
                        VariablePart::Name => pair.0 = value,
                        VariablePart::Value => pair.1 = value,
                    }
                }
            }
        }
    }
}

/// What the form holds, checked with the rules the server applies too.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub id: i32,
    pub name: String,
    pub description: String,
    pub timeout: Option<i32>,
    pub variables: BTreeMap<String, String>,
    pub labels: Vec<String>,
}

impl Checked {
    fn into_settings(self) -> EnvironmentSettings {
        EnvironmentSettings {
            labels: Input::Given(Some(self.labels)),
            ..EnvironmentSettings::all(self.name, self.description, self.variables, self.timeout)
        }
    }

    pub fn into_new(self) -> NewEnvironment {
        NewEnvironment {
            id: self.id.into(),
            settings: self.into_settings(),
        }
    }

    /// Every field is sent, so that the server stores the form as shown.
    pub fn into_update(self) -> UpdateEnvironment {
        UpdateEnvironment {
            id: Input::Missing,
            settings: self.into_settings(),
        }
    }
}

/// Labels as typed (`eu, staging` or `eu staging`), checked with the
/// server's rule; sorted.
pub fn parse_labels(raw: &str) -> Result<Vec<String>, String> {
    let mut labels: Vec<String> = raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|label| !label.is_empty())
        .map(str::to_string)
        .collect();
    validate::check_labels(&labels)?;
    sort_by(&mut labels, |a, b| a.cmp(b));
    Ok(labels)
}

/// The draft checked for sending, or the problems by field name. The id
/// only matters when `creating`: an existing environment keeps its own.
pub fn check(draft: &Draft, creating: bool) -> Result<Checked, BTreeMap<String, String>> {
    let mut fields = validate::Fields::default();
    let id = if creating {
        let parsed = draft
            .id
            .trim()
            .parse::<i64>()
            .map_err(|_| {
                format!("must be a number from {MIN_ENVIRONMENT_ID} to {MAX_ENVIRONMENT_ID}")
            })
            .and_then(validate::environment_id);
        fields.check("id", parsed)
    } else {
        Some(0)
    };
    let name = fields.check("name", validate::environment_name(&draft.name));
    let description = fields.check("description", validate::description(&draft.description));
    let timeout = if draft.timeout.trim().is_empty() {
        Some(None)
    } else {
        let parsed = draft
            .timeout
            .trim()
            .parse::<i32>()
            .map(Some)
            .map_err(|_| ())
            .and_then(|secs| validate::run_timeout_secs(secs).map_err(|_| ()))
            .map_err(|()| {
                format!(
                    "must be a whole number of seconds from 1 to {}; leave it empty for the default",
                    validate::MAX_RUN_TIMEOUT_SECS
                )
            });
        fields.check("run_timeout_secs", parsed)
    };
    let mut variables = BTreeMap::new();
    for (name, value) in &draft.variables {
        let name = name.trim();
        if name.is_empty() && value.is_empty() {
            continue;
        }
        if variables.insert(name.to_string(), value.clone()).is_some() {
            fields.add("variables", format!("{name:?} is named twice"));
        }
    }
    let variables = fields.check(
        "variables",
        validate::variables(&variables).map(|()| variables),
    );
    let labels = fields.check("labels", parse_labels(&draft.labels));
    match (id, name, description, timeout, variables, labels) {
        (Some(id), Some(name), Some(description), Some(timeout), Some(variables), Some(labels))
            if fields.is_empty() =>
        {
            Ok(Checked {
                id,
                name,
                description,
                timeout,
                variables,
                labels,
            })
        }
        _ => Err(fields.into_inner()),
    }
}

/// Everything the page shows besides the environment as last fetched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvironmentForm {
    pub draft: Draft,
    /// The draft holds something to edit: at once when creating, else
    /// once the environment has arrived.
    pub loaded: bool,
    /// Problems found before sending, by field.
    pub local: BTreeMap<String, String>,
    /// The server's last refusal.
    pub error: Option<ApiError>,
    /// A save or delete is under way.
    pub busy: bool,
    /// Delete was pressed once: the page asks before deleting.
    pub confirm_delete: bool,
    pub saved: bool,
}

pub enum Action {
    /// The environment arrived from the server. Only the first one fills
    /// the form: a later answer must not overwrite what the user typed.
    Loaded(Environment),
    Edit(DraftField, String),
    Variables(VariableEdit),
    /// The draft failed the local checks: nothing was sent.
    Refused(BTreeMap<String, String>),
    Saving,
    Saved,
    AskDelete,
    KeepIt,
    Deleting,
    Deleted,
    /// The server refused a save or a delete.
    Failed(ApiError),
}

impl EnvironmentForm {
    /// A new environment's form starts empty and ready; an existing one's
    /// waits for [`Action::Loaded`].
    pub fn new(creating: bool) -> EnvironmentForm {
        EnvironmentForm {
            loaded: creating,
            ..EnvironmentForm::default()
        }
    }

    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Loaded(environment) => {
                if !self.loaded {
                    self.draft = Draft::from_environment(&environment);
                    self.loaded = true;
                }
            }
            Action::Edit(field, value) => {
                self.draft.set(field, value);
                self.saved = false;
            }
            Action::Variables(edit) => self.draft.edit_variables(edit),
            Action::Refused(problems) => {
                self.local = problems;
                self.error = None;
            }
            Action::Saving => {
                self.local.clear();
                self.busy = true;
            }
            Action::Saved => {
                self.busy = false;
                self.error = None;
                self.saved = true;
            }
            Action::AskDelete => self.confirm_delete = true,
            Action::KeepIt => self.confirm_delete = false,
            Action::Deleting => {
                self.confirm_delete = false;
                self.busy = true;
            }
            Action::Deleted => self.busy = false,
            Action::Failed(error) => {
                self.busy = false;
                self.error = Some(error);
            }
        }
    }

    /// What is wrong with field `name`: our own finding first, else the
    /// server's.
    pub fn problem(&self, name: &str) -> Option<String> {
        self.local
            .get(name)
            .cloned()
            .or_else(|| self.error.as_ref().and_then(|e| e.field(name)))
    }

    /// The server's refusal when no field shows it, or when it also names
    /// fields the form does not have.
    pub fn form_error(&self) -> Option<&ApiError> {
        self.error.as_ref().filter(|e| {
            KNOWN_FIELDS.iter().all(|name| e.field(name).is_none())
                || !e.other_fields(KNOWN_FIELDS).is_empty()
        })
    }
}

impl Reducible for EnvironmentForm {
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
    use shared::{EnvironmentState, ErrorCode, FieldErrors};
    use wasm_bindgen_test::wasm_bindgen_test;

    fn environment() -> Environment {
        Environment {
            id: 5,
            name: "staging".into(),
            description: "the staging box".into(),
            variables: BTreeMap::from([("API_URL".to_string(), "http://x".to_string())]),
            run_timeout_secs: Some(600),
            state: EnvironmentState::Idle,
            current_run_id: None,
            queued: 0,
            labels: Vec::new(),
            maintenance: None,
            hold: None,
            reservations_waiting: 0,
            estimated_free_at: None,
            protected: false,
            allowed_users: Vec::new(),
        }
    }

    fn refusal(fields: &[(&str, &str)]) -> ApiError {
        let mut error = ApiError::new(422, ErrorCode::Validation, "invalid environment");
        error.body.error.fields = Some(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<FieldErrors>(),
        );
        error
    }

    fn applied(mut form: EnvironmentForm, actions: Vec<Action>) -> EnvironmentForm {
        for action in actions {
            form.apply(action);
        }
        form
    }

    #[wasm_bindgen_test]
    fn only_the_first_answer_fills_the_form() {
        let mut later = environment();
        later.name = "renamed elsewhere".into();
        let form = applied(
            EnvironmentForm::new(false),
            vec![
                Action::Loaded(environment()),
                Action::Edit(DraftField::Name, "mine".into()),
                Action::Loaded(later),
            ],
        );
        assert!(form.loaded);
        assert_eq!(form.draft.name, "mine");
        assert_eq!(form.draft.timeout, "600");
        assert_eq!(
            form.draft.variables,
            vec![("API_URL".to_string(), "http://x".to_string())]
        );
    }

    #[wasm_bindgen_test]
    fn a_new_environment_is_ready_at_once_and_ignores_answers() {
        let form = applied(
            EnvironmentForm::new(true),
            vec![Action::Loaded(environment())],
        );
        assert!(form.loaded);
        assert_eq!(form.draft, Draft::default());
    }

    #[wasm_bindgen_test]
    fn variables_are_added_edited_and_removed_by_row() {
        let set = |index, part, value: &str| {
            Action::Variables(VariableEdit::Set {
                index,
                part,
                value: value.into(),
            })
        };
        let form = applied(
            EnvironmentForm::new(true),
            vec![
                Action::Variables(VariableEdit::Add),
                Action::Variables(VariableEdit::Add),
                set(0, VariablePart::Name, "A"),
                set(1, VariablePart::Name, "B"),
                set(1, VariablePart::Value, "2"),
                // Rows that are gone already change nothing.
                set(7, VariablePart::Value, "lost"),
                Action::Variables(VariableEdit::Remove(9)),
                Action::Variables(VariableEdit::Remove(0)),
            ],
        );
        assert_eq!(
            form.draft.variables,
            vec![("B".to_string(), "2".to_string())]
        );
    }

    #[wasm_bindgen_test]
    fn typing_takes_back_saved_but_keeps_the_complaints_until_the_next_try() {
        let mut form = applied(
            EnvironmentForm::new(false),
            vec![
                Action::Loaded(environment()),
                Action::Saving,
                Action::Failed(refusal(&[("name", "taken")])),
            ],
        );
        assert!(!form.busy);
        assert_eq!(form.problem("name").as_deref(), Some("taken"));
        form.apply(Action::Saving);
        form.apply(Action::Saved);
        assert!(form.saved && form.error.is_none() && !form.busy);
        form.apply(Action::Edit(DraftField::Description, "new".into()));
        assert!(!form.saved);
    }

    #[wasm_bindgen_test]
    fn local_problems_come_before_the_servers_and_a_new_try_clears_them() {
        let mut form = applied(
            EnvironmentForm::new(true),
            vec![Action::Failed(refusal(&[
                ("name", "taken"),
                ("id", "in use"),
            ]))],
        );
        form.apply(Action::Refused(BTreeMap::from([(
            "name".to_string(),
            "must not be empty".to_string(),
        )])));
        // A local refusal replaces the server's, which was about an older draft.
        assert_eq!(form.error, None);
        assert_eq!(form.problem("name").as_deref(), Some("must not be empty"));
        assert_eq!(form.problem("id"), None);
        form.apply(Action::Saving);
        assert!(form.local.is_empty() && form.busy);
    }

    #[wasm_bindgen_test]
    fn deleting_asks_first_and_can_be_called_off() {
        let mut form = applied(
            EnvironmentForm::new(false),
            vec![Action::Loaded(environment()), Action::AskDelete],
        );
        assert!(form.confirm_delete);
        form.apply(Action::KeepIt);
        assert!(!form.confirm_delete);
        form.apply(Action::AskDelete);
        form.apply(Action::Deleting);
        assert!(!form.confirm_delete && form.busy);
        form.apply(Action::Failed(ApiError::new(
            409,
            ErrorCode::Conflict,
            "a run is using it",
        )));
        assert!(!form.busy);
        assert_eq!(
            form.form_error().map(ApiError::message),
            Some("a run is using it")
        );
    }

    #[wasm_bindgen_test]
    fn only_complaints_without_a_field_of_their_own_show_at_form_level() {
        let mut form = EnvironmentForm::new(true);
        form.apply(Action::Failed(refusal(&[("name", "taken")])));
        assert!(form.form_error().is_none());
        form.apply(Action::Failed(refusal(&[
            ("name", "taken"),
            ("owner", "who?"),
        ])));
        assert!(form.form_error().is_some());
    }

    #[wasm_bindgen_test]
    fn labels_are_typed_with_commas_or_spaces_and_checked_like_the_server() {
        assert_eq!(
            parse_labels(" staging,eu  gpu-2 ,"),
            Ok(vec![
                "eu".to_string(),
                "gpu-2".to_string(),
                "staging".to_string()
            ])
        );
        assert_eq!(parse_labels(""), Ok(Vec::new()));
        assert!(parse_labels("eu eu").is_err_and(|why| why.contains("twice")));
        assert!(parse_labels("Staging").is_err());
        let mut environment = environment();
        environment.labels = vec!["eu".into(), "staging".into()];
        assert_eq!(Draft::from_environment(&environment).labels, "eu, staging");
    }

    #[wasm_bindgen_test]
    fn the_check_applies_the_servers_rules() {
        let draft = Draft {
            id: " 42 ".into(),
            name: "  qa ".into(),
            description: String::new(),
            timeout: String::new(),
            labels: "staging, eu".into(),
            variables: vec![
                ("  TOKEN ".into(), "x".into()),
                (String::new(), String::new()),
            ],
        };
        let checked = check(&draft, true);
        assert_eq!(
            checked
                .as_ref()
                .map(|c| (c.id, c.timeout, c.variables.len())),
            Ok((42, None, 1))
        );
        assert_eq!(
            checked.as_ref().map(|c| c.labels.clone()),
            Ok(vec!["eu".to_string(), "staging".to_string()])
        );
        assert_eq!(
            checked.map(|c| c.into_update().settings.run_timeout_secs),
            Ok(Input::Given(None))
        );
        // An existing environment's id is not the form's to check.
        let editing = Draft {
            id: "not a number".into(),
            ..draft.clone()
        };
        assert!(check(&editing, false).is_ok());
        let problems = check(&editing, true).err().unwrap_or_default();
        assert!(problems.contains_key("id"));
        let bad = Draft {
            timeout: "0".into(),
            labels: "eu EU".into(),
            variables: vec![("A".into(), "1".into()), (" A".into(), "2".into())],
            ..draft
        };
        let problems = check(&bad, true).err().unwrap_or_default();
        assert_eq!(
            problems.keys().collect::<Vec<_>>(),
            ["labels", "run_timeout_secs", "variables"]
        );
        assert!(problems["variables"].contains("named twice"));
    }
}
