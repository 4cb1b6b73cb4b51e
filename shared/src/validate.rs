//! Input rules of the API, applied by the backend and, for early feedback,
//! by the SPA. Each function parses raw input into a clean value or says
//! in words what is wrong with it.

use crate::{FieldErrors, MAX_ENVIRONMENT_ID, MAX_PATHS, MIN_ENVIRONMENT_ID};
use std::collections::{BTreeMap, HashSet};

pub const MAX_USERNAME_CHARS: usize = 64;
pub const MAX_ENVIRONMENT_NAME_CHARS: usize = 64;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_UPLOAD_DEPTH: usize = 4;
pub const MAX_SEGMENT_CHARS: usize = 64;
pub const MAX_FILE_NAME_CHARS: usize = 128;
pub const MAX_RUN_TIMEOUT_SECS: i32 = 7 * 24 * 3600;
pub const MAX_VARIABLES: usize = 200;
pub const MAX_VARIABLE_VALUE_BYTES: usize = 32 * 1024;
/// The longest node id part (after `::`) a run may name.
pub const MAX_NODE_SUFFIX_BYTES: usize = 4096;
/// Variables the runner sets itself; an environment may not set them.
pub const RESERVED_VARIABLES: [&str; 7] = [
    "TEST_ENV_ID",
    "TEST_ENV_NAME",
    "TEST_RUN_ID",
    "EXECUTOR_URL",
    "TEST_ARTIFACTS_DIR",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
];
/// Every variable with this prefix is the runner's own.
pub const RESERVED_VARIABLE_PREFIX: &str = "TEST_EXECUTOR_";

/// A trimmed user name of 1 to 64 characters without control characters.
pub fn username(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > MAX_USERNAME_CHARS {
        return Err(format!("must be at most {MAX_USERNAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_string())
}

pub fn environment_id(id: i64) -> Result<i32, String> {
    if (i64::from(MIN_ENVIRONMENT_ID)..=i64::from(MAX_ENVIRONMENT_ID)).contains(&id) {
        Ok(id as i32)
    } else {
        Err(format!(
            "must be an environment id from {MIN_ENVIRONMENT_ID} to {MAX_ENVIRONMENT_ID}"
        ))
    }
}

/// A test path as a run names it: a file or directory relative to the tests
/// root, optionally followed by a pytest node id suffix (`::test_a`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TestPath {
    /// The file or directory part, normalised (no trailing slash).
    pub location: String,
    /// What follows the first `::`, if anything.
    pub node_suffix: Option<String>,
}

impl TestPath {
    pub fn parse(raw: &str) -> Result<TestPath, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        // The file part is a path of the catalog; what follows `::` is
        // pytest's node id, taken as it is (escaped parameters hold `\`,
        // parameters may hold `::`).
        let (location, node_suffix) = match raw.split_once("::") {
            Some((location, suffix)) => (location, Some(suffix)),
            None => (raw, None),
        };
        let location = relative_path(location.strip_suffix('/').unwrap_or(location))?;
        if let Some(suffix) = node_suffix {
            if !location.ends_with(".py") {
                return Err("a test selector (::name) may only follow a .py file".into());
            }
            if suffix.is_empty() || suffix.starts_with("::") || suffix.ends_with("::") {
                return Err("has an empty test name after ::".into());
            }
            if suffix.len() > MAX_NODE_SUFFIX_BYTES {
                return Err(format!(
                    "has a test name over {MAX_NODE_SUFFIX_BYTES} bytes after ::"
                ));
            }
        }
        Ok(TestPath {
            location,
            node_suffix: node_suffix.map(str::to_string),
        })
    }

    pub fn as_arg(&self) -> String {
        match &self.node_suffix {
            Some(suffix) => format!("{}::{}", self.location, suffix),
            None => self.location.clone(),
        }
    }
}

/// A relative path that stays inside its root: no absolute path, no empty,
/// `.` or `..` segment.
pub fn relative_path(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.contains('\0') {
        return Err("must not contain a NUL byte".into());
    }
    if raw.contains('\\') {
        return Err("must use / as separator, not \\".into());
    }
    if raw.starts_with('/') {
        return Err("must be relative to the tests root".into());
    }
    for segment in raw.split('/') {
        match segment {
            "" => return Err("must not contain an empty segment (//)".into()),
            "." | ".." => return Err("must not contain . or .. segments".into()),
            _ => {}
        }
    }
    Ok(raw.to_string())
}

/// The paths of a new run: 1 to 1000, each a well-formed test path, no
/// duplicates. Whether each exists is for the catalog to say.
pub fn run_paths(raw: &[String]) -> Result<Vec<TestPath>, String> {
    if raw.is_empty() {
        return Err("must name at least one test file or directory".into());
    }
    if raw.len() > MAX_PATHS {
        return Err(format!("must name at most {MAX_PATHS} paths"));
    }
    let mut seen = HashSet::new();
    let mut paths = Vec::with_capacity(raw.len());
    for item in raw {
        let path = TestPath::parse(item).map_err(|why| format!("{item:?} {why}"))?;
        if !seen.insert(path.clone()) {
            return Err(format!("{item:?} is named twice"));
        }
        paths.push(path);
    }
    Ok(paths)
}

/// Test files are named `test_*.py` or `*_test.py`, as pytest finds them.
pub fn is_test_file_name(name: &str) -> bool {
    (name.starts_with("test_") && name.ends_with(".py") && name.len() > "test_.py".len() - 1)
        || (name.ends_with("_test.py") && name.len() > "_test.py".len())
}

/// The name of an uploaded test file.
pub fn upload_file_name(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.contains(['/', '\\', '\0']) {
        return Err("must be a plain file name, without any directory".into());
    }
    if raw.chars().count() > MAX_FILE_NAME_CHARS {
        return Err(format!("must be at most {MAX_FILE_NAME_CHARS} characters"));
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err("may only contain letters, digits, _, - and .".into());
    }
    if !is_test_file_name(raw) {
        return Err("must be named test_*.py or *_test.py".into());
    }
    Ok(raw.to_string())
}

/// Directories the catalog never shows or searches: dot-directories and the
/// usual homes of caches, packages and virtual environments. A test file
/// under one would be invisible in the catalog yet collected by pytest.
pub fn is_hidden_dir(name: &str) -> bool {
    name.starts_with('.')
        || matches!(
            name,
            "__pycache__" | "node_modules" | "venv" | "site-packages"
        )
}

/// The directory an upload goes to: empty for the root, else up to four
/// segments of `[A-Za-z0-9_-]{1,64}` separated by `/`, none of them a
/// directory the catalog hides ([`is_hidden_dir`]).
pub fn upload_directory(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed.contains('\0') {
        return Err("must not contain a NUL byte".into());
    }
    if trimmed.contains('\\') {
        return Err("must use / as separator, not \\".into());
    }
    if trimmed.starts_with('/') {
        return Err("must be relative to the tests root".into());
    }
    let segments: Vec<&str> = trimmed.split('/').collect();
    if segments.len() > MAX_UPLOAD_DEPTH {
        return Err(format!(
            "must be at most {MAX_UPLOAD_DEPTH} directories deep"
        ));
    }
    for segment in &segments {
        if *segment == ".." || *segment == "." {
            return Err("must not contain . or .. segments".into());
        }
        let valid = !segment.is_empty()
            && segment.len() <= MAX_SEGMENT_CHARS
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(format!(
                "segment {segment:?} must be 1 to {MAX_SEGMENT_CHARS} of A-Z a-z 0-9 _ -"
            ));
        }
        if is_hidden_dir(segment) {
            return Err(format!(
                "segment {segment:?} is a directory the catalog hides (caches, packages, \
                 virtual environments): a test there could be neither seen nor deleted"
            ));
        }
    }
    Ok(segments.join("/"))
}

pub fn variable_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!("{name:?} must match [A-Za-z_][A-Za-z0-9_]*"))
    }
}

pub fn variables(vars: &BTreeMap<String, String>) -> Result<(), String> {
    if vars.len() > MAX_VARIABLES {
        return Err(format!("must have at most {MAX_VARIABLES} entries"));
    }
    for (name, value) in vars {
        variable_name(name)?;
        if RESERVED_VARIABLES.contains(&name.as_str()) || name.starts_with(RESERVED_VARIABLE_PREFIX)
        {
            return Err(format!(
                "{name} is set by the runner itself; choose another name"
            ));
        }
        if value.contains('\0') {
            return Err(format!("{name} must not contain a NUL byte"));
        }
        if value.len() > MAX_VARIABLE_VALUE_BYTES {
            return Err(format!(
                "{name} must be at most {MAX_VARIABLE_VALUE_BYTES} bytes"
            ));
        }
    }
    Ok(())
}

pub fn environment_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > MAX_ENVIRONMENT_NAME_CHARS {
        return Err(format!(
            "must be at most {MAX_ENVIRONMENT_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_string())
}

pub fn description(raw: &str) -> Result<String, String> {
    if raw.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "must be at most {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    if raw.contains('\0') {
        return Err("must not contain a NUL byte".into());
    }
    Ok(raw.to_string())
}

pub fn run_timeout_secs(value: Option<i32>) -> Result<Option<i32>, String> {
    match value {
        Some(secs) if !(1..=MAX_RUN_TIMEOUT_SECS).contains(&secs) => Err(format!(
            "must be from 1 to {MAX_RUN_TIMEOUT_SECS} seconds, or null for the default"
        )),
        other => Ok(other),
    }
}

/// The most labels an environment has.
pub const MAX_LABELS: usize = 20;
/// The longest reason of a reservation or a maintenance.
pub const MAX_REASON_CHARS: usize = 500;

/// An environment's labels: each `[a-z0-9_-]{1,32}`, no duplicate; sorted.
pub fn labels(raw: &[String]) -> Result<Vec<String>, String> {
    check_labels(raw)?;
    let mut labels = raw.to_vec();
    labels.sort();
    Ok(labels)
}

/// The rule of [`labels`] without the sorting (the SPA sorts with a
/// cheaper sort of its own).
pub fn check_labels(raw: &[String]) -> Result<(), String> {
    if raw.len() > MAX_LABELS {
        return Err(format!("must be at most {MAX_LABELS} labels"));
    }
    for (index, label) in raw.iter().enumerate() {
        label_name(label)?;
        if raw[..index].contains(label) {
            return Err(format!("{label:?} is there twice"));
        }
    }
    Ok(())
}

/// One label: `[a-z0-9_-]{1,32}`.
pub fn label_name(label: &str) -> Result<(), String> {
    let valid = (1..=32).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!("{label:?} must be 1 to 32 of a-z 0-9 _ -"))
    }
}

/// How long a reservation holds its environment: 1 to 480 minutes.
pub fn reservation_minutes(minutes: i32) -> Result<i32, String> {
    if (1..=480).contains(&minutes) {
        Ok(minutes)
    } else {
        Err("must be from 1 to 480 minutes".into())
    }
}

/// How long an environment is held after a failed run: 1 to 120 minutes.
pub fn hold_minutes(minutes: i32) -> Result<i32, String> {
    if (1..=120).contains(&minutes) {
        Ok(minutes)
    } else {
        Err("must be from 1 to 120 minutes".into())
    }
}

/// A reason given for a reservation or a maintenance: free text, short,
/// without control characters but line breaks.
pub fn reason(raw: &str) -> Result<String, String> {
    let reason = raw.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(format!("must be at most {MAX_REASON_CHARS} characters"));
    }
    if reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err("must not contain control characters".into());
    }
    Ok(reason.to_string())
}

/// Collects per-field problems so that one answer names every bad field.
#[derive(Debug, Default)]
pub struct Fields(FieldErrors);

impl Fields {
    /// Keeps the value if it is valid, records the problem otherwise.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(why) => {
                self.0.entry(field.to_string()).or_insert(why);
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, why: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_insert_with(|| why.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_inner(self) -> FieldErrors {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_then_sorted() {
        let raw = |labels: &[&str]| labels.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        assert_eq!(
            labels(&raw(&["eu", "ci-2", "a_b"])),
            Ok(raw(&["a_b", "ci-2", "eu"]))
        );
        assert_eq!(check_labels(&raw(&["eu", "ci-2"])), Ok(()));
        assert!(check_labels(&raw(&["eu", "x", "eu"])).is_err_and(|why| why.contains("twice")));
        assert!(check_labels(&raw(&["EU"])).is_err());
        assert!(check_labels(&raw(&[""])).is_err());
        assert!(check_labels(&vec!["x".to_string(); MAX_LABELS + 1]).is_err());
    }

    #[test]
    fn username_is_trimmed_and_bounded() {
        assert_eq!(username("  alice "), Ok("alice".to_string()));
        assert!(username("   ").is_err());
        assert!(username("").is_err());
        assert!(username(&"x".repeat(64)).is_ok());
        assert!(username(&"x".repeat(65)).is_err());
        assert!(username(&"é".repeat(64)).is_ok(), "characters, not bytes");
        assert!(username("bob\u{7}").is_err());
        assert!(username("a\nb").is_err());
    }

    #[test]
    fn environment_ids_run_from_1_to_100() {
        assert_eq!(environment_id(1), Ok(1));
        assert_eq!(environment_id(100), Ok(100));
        assert!(environment_id(0).is_err());
        assert!(environment_id(101).is_err());
        assert!(environment_id(-5).is_err());
        assert!(environment_id(i64::MAX).is_err());
    }

    #[test]
    fn test_paths_stay_relative_and_inside_the_root() {
        for bad in [
            "",
            "/etc/passwd",
            "../x.py",
            "a/../../x.py",
            "a/./test_x.py",
            "a//test_x.py",
            "a\\test_x.py",
            "test_x.py\0",
            "smoke/test_x.py::",
            "smoke/test_x.py::a::",
            "smoke::test_a",
        ] {
            assert!(TestPath::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn test_paths_may_select_single_tests() {
        let path = TestPath::parse("smoke/test_x.py::TestK::test_b[1]");
        assert_eq!(
            path,
            Ok(TestPath {
                location: "smoke/test_x.py".into(),
                node_suffix: Some("TestK::test_b[1]".into()),
            })
        );
        let dir = TestPath::parse("api/").map(|p| p.as_arg());
        assert_eq!(dir, Ok("api".to_string()));
        // pytest's own ids, whatever their parameters hold.
        let escaped = r"u/test_x.py::test_u[\xfcn\xefc\xf6d\xe9]";
        assert_eq!(
            TestPath::parse(escaped).map(|p| p.as_arg()),
            Ok(escaped.to_string())
        );
        let inner = "u/test_x.py::test_p[a::b]";
        assert_eq!(
            TestPath::parse(inner).map(|p| p.as_arg()),
            Ok(inner.to_string())
        );
        assert!(
            TestPath::parse(r"a\test_x.py::t").is_err(),
            "the file part stays a path"
        );
        assert!(TestPath::parse("a/test_x.py::").is_err());
        let long = format!("a/test_x.py::t[{}]", "x".repeat(MAX_NODE_SUFFIX_BYTES));
        assert!(TestPath::parse(&long).is_err());
    }

    #[test]
    fn run_paths_must_be_present_and_distinct() {
        assert!(run_paths(&[]).is_err());
        let twice = vec!["a/test_x.py".to_string(), "a/test_x.py/".to_string()];
        assert!(run_paths(&twice).is_err());
        let many: Vec<String> = (0..=MAX_PATHS).map(|i| format!("test_{i}.py")).collect();
        assert!(run_paths(&many).is_err());
        assert_eq!(
            run_paths(&many[..MAX_PATHS]).map(|p| p.len()),
            Ok(MAX_PATHS)
        );
    }

    #[test]
    fn test_file_names_follow_pytest() {
        for good in ["test_x.py", "x_test.py", "test_a_b.py", "test_.py"] {
            assert!(is_test_file_name(good), "{good}");
        }
        for bad in [
            "notatest.py",
            "test_x.txt",
            "test.py",
            "_test.py",
            "xtest.py",
            "test_x.pyc",
        ] {
            assert!(!is_test_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn upload_names_are_plain_test_files() {
        assert_eq!(upload_file_name("test_ok.py"), Ok("test_ok.py".into()));
        for bad in [
            "",
            "../test_x.py",
            "a/test_x.py",
            "a\\test_x.py",
            "test_\0.py",
            "notatest.py",
            "test_x.txt",
            "test x.py",
        ] {
            assert!(upload_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn upload_directories_are_shallow_and_plain() {
        assert_eq!(upload_directory(""), Ok(String::new()));
        assert_eq!(
            upload_directory("uploads/payments/"),
            Ok("uploads/payments".into())
        );
        assert_eq!(upload_directory("a/b/c/d"), Ok("a/b/c/d".into()));
        for bad in [
            "a/b/c/d/e",
            "..",
            "a/../b",
            "/etc",
            "a\\b",
            "a b",
            "a//b",
            "a/\0",
            &"x".repeat(65),
            "__pycache__",
            "uploads/site-packages",
            "a/node_modules/b",
            "venv",
            ".hidden",
        ] {
            assert!(upload_directory(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn variable_names_are_shell_identifiers() {
        assert!(variable_name("API_URL").is_ok());
        assert!(variable_name("_x1").is_ok());
        for bad in ["", "1X", "A-B", "A B", "Ä"] {
            assert!(variable_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_runners_own_variables_are_reserved() {
        for name in [
            "TEST_ENV_ID",
            "TEST_EXECUTOR_PARENT_PID",
            "TEST_EXECUTOR_WATCHDOG_MS",
        ] {
            let vars = BTreeMap::from([(name.to_string(), "1".to_string())]);
            let why = variables(&vars).unwrap_err();
            assert!(why.contains(name), "{why}");
        }
        let fine = BTreeMap::from([("API_URL".to_string(), "x".to_string())]);
        assert!(variables(&fine).is_ok());
    }

    #[test]
    fn run_timeouts_are_positive_or_default() {
        assert_eq!(run_timeout_secs(None), Ok(None));
        assert_eq!(run_timeout_secs(Some(60)), Ok(Some(60)));
        assert!(run_timeout_secs(Some(0)).is_err());
        assert!(run_timeout_secs(Some(-1)).is_err());
    }

    #[test]
    fn fields_keep_the_first_problem_of_each_field() {
        let mut fields = Fields::default();
        assert_eq!(fields.check("username", username("ok")), Some("ok".into()));
        assert_eq!(fields.check("username", username("")), None);
        fields.add("username", "second");
        let errors = fields.into_inner();
        assert_eq!(
            errors.get("username").map(String::as_str),
            Some("must not be empty")
        );
    }
}
