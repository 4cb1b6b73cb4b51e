//! Starts a run: who asks, on which environment (or any free one with a
//! label, optionally split over several of them as a run group), and which
//! tests, picked from a searchable tree. The server's validation errors
//! appear next to their fields; success opens the new run or group.

use std::rc::Rc;

use shared::run_group::{MAX_SHARDS, MIN_SHARDS};
use shared::{validate, Input, NewRun, NewRunGroup, RunTarget};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{self, ApiError};
use crate::app::Route;
use crate::components::field::{error_id, Field};
use crate::components::run_target_fields::RunTargetFields;
use crate::components::test_tree::TestTree;
use crate::hooks::use_polling::use_polling;
use crate::hooks::use_start_run::{forget_field, use_start_run, StartRun};
use crate::hooks::use_stored_username::use_stored_username;
use crate::tree::{self, DirNode};

const FIELDS: [&str; 8] = [
    "username",
    "environment_id",
    "environment_label",
    "paths",
    "shards",
    "hold_on_failure_minutes",
    "keyword",
    "markers",
];

/// A run's `-k` and `-m` expressions, each `None` when blank.
type Expressions = (Option<String>, Option<String>);

/// The keyword and markers expressions as typed, each checked by the
/// server's rule; the field and why, for a bad one.
fn selection_input(keyword: &str, markers: &str) -> Result<Expressions, (&'static str, String)> {
    let keyword = shared::selection::expression(keyword)
        .map_err(|why| ("keyword", format!("Keyword {why}")))?;
    let markers = shared::selection::expression(markers)
        .map_err(|why| ("markers", format!("Markers {why}")))?;
    Ok((keyword, markers))
}

/// What the form sends: a run, or (for a pool, split in two or more) a
/// run group; either with the hold on failure asked for.
pub fn submission(
    username: &str,
    target: &RunTarget,
    shards: i32,
    paths: Vec<String>,
    hold: Option<i32>,
) -> Result<NewRun, NewRunGroup> {
    let hold = match hold {
        Some(minutes) => Input::Given(Some(minutes)),
        None => Input::Missing,
    };
    match target {
        RunTarget::Pool(label) if shards >= MIN_SHARDS => {
            let mut group = NewRunGroup::new(username, label, shards, paths);
            group.hold_on_failure_minutes = hold;
            Err(group)
        }
        target => {
            let mut run = NewRun::to(username, target.clone(), paths);
            run.hold_on_failure_minutes = hold;
            Ok(run)
        }
    }
}

/// The hold-on-failure minutes as typed: empty is no hold; anything else
/// follows the server's rule.
fn hold_minutes(raw: &str) -> Result<Option<i32>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i32>()
        .map_err(|_| "must be a whole number of minutes from 1 to 120".to_string())
        .and_then(validate::hold_minutes)
        .map(Some)
}

/// What the shards field will do, in words.
fn shards_hint(label: &str, shards: i32) -> String {
    if shards >= MIN_SHARDS {
        format!(
            "A run group: the test files split into up to {shards} runs of about equal length \
             (by their past durations), each on a free environment labelled {label}."
        )
    } else {
        format!(
            "One run, on the first free environment labelled {label}; 2 or more split the tests."
        )
    }
}

#[component]
pub fn NewRunPage() -> Html {
    let username = use_stored_username();
    let target = use_state(|| RunTarget::Environment(1));
    let shards = use_state(|| 1_i32);
    let selection = use_state(|| Rc::new(Vec::<String>::new()));
    let search = use_state(String::new);
    let hold = use_state(String::new);
    let keyword = use_state(String::new);
    let markers = use_state(String::new);
    let StartRun {
        error,
        busy,
        start,
        start_group,
    } = use_start_run();
    // The catalog changes rarely: every five seconds is enough.
    let catalog = use_polling((), Some(5000), |()| api::catalog::list());
    // Markers change with the tests root's configuration: read once.
    let known_markers = use_polling((), None, |()| api::catalog::markers());
    let root = {
        let catalog = catalog.data().cloned();
        use_memo(catalog, |catalog| {
            Rc::new(
                catalog
                    .as_ref()
                    .map(DirNode::from_catalog)
                    .unwrap_or_default(),
            )
        })
    };

    let onsubmit = {
        let username = username.clone();
        let target = target.clone();
        let shards = shards.clone();
        let selection = selection.clone();
        let hold = hold.clone();
        let keyword = keyword.clone();
        let markers = markers.clone();
        let error = error.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let hold = match hold_minutes(&hold) {
                Ok(hold) => hold,
                Err(why) => {
                    let why = ApiError::invalid_field("hold_on_failure_minutes", why);
                    return error.set(Some(why));
                }
            };
            let (keyword, markers) = match selection_input(&keyword, &markers) {
                Ok(selected) => selected,
                Err((field, why)) => return error.set(Some(ApiError::invalid_field(field, why))),
            };
            match submission(&username, &target, *shards, selection.to_vec(), hold) {
                Ok(mut run) => {
                    run.keyword = keyword.into();
                    run.markers = markers.into();
                    start.emit(run)
                }
                Err(_) if keyword.is_some() || markers.is_some() => {
                    error.set(Some(ApiError::invalid_field(
                        "keyword",
                        "Keyword and markers select tests of one run; a run split over \
                         environments takes whole files. Set the split to 1, or clear them."
                            .to_string(),
                    )))
                }
                Err(group) => start_group.emit(group),
            }
        })
    };
    let on_keyword = {
        let keyword = keyword.clone();
        let forget = forget_field(&error, "keyword");
        Callback::from(move |event: InputEvent| {
            keyword.set(event.target_unchecked_into::<HtmlInputElement>().value());
            forget();
        })
    };
    let on_markers = {
        let markers = markers.clone();
        let forget = forget_field(&error, "markers");
        Callback::from(move |event: InputEvent| {
            markers.set(event.target_unchecked_into::<HtmlInputElement>().value());
            forget();
        })
    };
    let on_pick_marker = {
        let markers = markers.clone();
        let forget = forget_field(&error, "markers");
        Callback::from(move |event: Event| {
            let select = event.target_unchecked_into::<HtmlSelectElement>();
            let picked = select.value();
            if !picked.is_empty() {
                markers.set(crate::selection::add_marker(&markers, &picked));
                forget();
            }
            // Back to the prompt, so that the same marker can be picked again.
            select.set_value("");
        })
    };
    let on_hold = {
        let hold = hold.clone();
        let forget = forget_field(&error, "hold_on_failure_minutes");
        Callback::from(move |event: InputEvent| {
            hold.set(event.target_unchecked_into::<HtmlInputElement>().value());
            forget();
        })
    };
    let on_shards = {
        let shards = shards.clone();
        let forget = forget_field(&error, "shards");
        Callback::from(move |event: InputEvent| {
            let value = event.target_unchecked_into::<HtmlInputElement>().value();
            // An empty or partial number counts as one run until it is whole.
            shards.set(value.trim().parse().unwrap_or(1));
            forget();
        })
    };
    let on_search = {
        let search = search.clone();
        Callback::from(move |event: InputEvent| {
            search.set(event.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_toggle = {
        let selection = selection.clone();
        let forget = forget_field(&error, "paths");
        Callback::from(move |(path, checked): (String, bool)| {
            selection.set(Rc::new(tree::toggle(&selection, &path, checked)));
            forget();
        })
    };
    let remove = |path: &str| {
        let selection = selection.clone();
        let path = path.to_string();
        let forget = forget_field(&error, "paths");
        Callback::from(move |_: MouseEvent| {
            selection.set(Rc::new(tree::toggle(&selection, &path, false)));
            forget();
        })
    };
    let clear = {
        let selection = selection.clone();
        Callback::from(move |_: MouseEvent| selection.set(Rc::new(Vec::new())))
    };

    let field_error = |name: &str| error.as_ref().and_then(|e| e.field(name));
    let paths_error = field_error("paths");
    let shards_error = field_error("shards");
    let hold_error = field_error("hold_on_failure_minutes");
    let keyword_error = field_error("keyword");
    let markers_error = field_error("markers");
    let marker_options = known_markers.data().cloned().unwrap_or_default();
    let pool = match &*target {
        RunTarget::Pool(label) => Some(label.clone()),
        RunTarget::Environment(_) => None,
    };
    let form_error = error.as_ref().filter(|e| {
        FIELDS.iter().all(|name| e.field(name).is_none()) || !e.other_fields(&FIELDS).is_empty()
    });

    let tests = match (catalog.data(), catalog.error()) {
        (Some(_), _) if root.file_count() == 0 => html! {
            <p class="empty">
                { "The catalog has no test files yet. " }
                <Link<Route> to={Route::Upload}>{ "Upload one" }</Link<Route>>{ "." }
            </p>
        },
        (Some(_), _) => html! {
            <TestTree root={(*root).clone()} selection={(*selection).clone()}
                search={AttrValue::from(search.trim().to_ascii_lowercase())} {on_toggle} />
        },
        (None, Some(error)) => html! {
            <p class="error">{ format!("The catalog could not be read: {}", error.message()) }</p>
        },
        (None, None) => html! { <p class="loading">{ "Loading the catalog…" }</p> },
    };

    html! {
        <section class="page new-run-page">
            <h1>{ "New run" }</h1>
            <form {onsubmit} novalidate=true aria-label="New run">
                <RunTargetFields username_id="username" environment_field_id="environment"
                    username={username.clone()} target={target.clone()}
                    error={error.clone()} />
                if let Some(label) = pool {
                    <div class="row">
                        <Field id="shards" label="Split over environments" error={shards_error.clone()}
                            hint={AttrValue::from(shards_hint(&label, *shards))}>
                            <input id="shards" name="shards" type="number" inputmode="numeric"
                                min="1" max={MAX_SHARDS.to_string()} value={shards.to_string()}
                                oninput={on_shards}
                                aria-invalid={shards_error.is_some().then_some("true")}
                                aria-describedby={shards_error.is_some().then(|| error_id("shards"))} />
                        </Field>
                    </div>
                }
                <div class="row">
                    <Field id="hold-minutes" label="Hold on failure (minutes)" error={hold_error.clone()}
                        hint={AttrValue::Static("Optional. If the run fails, the environment is kept for you this long (1 to 120), to look at what went wrong.")}>
                        <input id="hold-minutes" type="number" min="1" max="120" inputmode="numeric"
                            placeholder="no hold" value={(*hold).clone()} oninput={on_hold}
                            aria-invalid={hold_error.is_some().then_some("true")}
                            aria-describedby={hold_error.is_some().then(|| error_id("hold-minutes"))} />
                    </Field>
                </div>
                <div class="row selection-fields">
                    <Field id="keyword" label="Keyword (-k)" error={keyword_error.clone()}
                        hint={AttrValue::Static("Optional. Only tests whose names match, e.g. login and not slow.")}>
                        <input id="keyword" type="text" maxlength="1000" placeholder="all tests"
                            autocomplete="off" spellcheck="false"
                            value={(*keyword).clone()} oninput={on_keyword}
                            aria-invalid={keyword_error.is_some().then_some("true")}
                            aria-describedby={keyword_error.is_some().then(|| error_id("keyword"))} />
                    </Field>
                    <Field id="markers" label="Markers (-m)" error={markers_error.clone()}
                        hint={AttrValue::Static("Optional. Only tests with these markers, e.g. smoke and not slow.")}>
                        <input id="markers" type="text" maxlength="1000" placeholder="any markers"
                            autocomplete="off" spellcheck="false"
                            value={(*markers).clone()} oninput={on_markers}
                            aria-invalid={markers_error.is_some().then_some("true")}
                            aria-describedby={markers_error.is_some().then(|| error_id("markers"))} />
                        <select id="marker-picker" class="marker-picker" aria-label="Add a marker" onchange={on_pick_marker}>
                            <option value="" selected=true>{ "Add a marker…" }</option>
                            { for marker_options.iter().map(|marker| html! {
                                <option key={marker.name.clone()} value={marker.name.clone()} title={marker.description.clone()}>
                                    { marker.name.clone() }
                                </option>
                            }) }
                        </select>
                    </Field>
                </div>
                <fieldset class={classes!("tests", paths_error.is_some().then_some("invalid"))}
                    aria-describedby={paths_error.is_some().then(|| error_id("tests"))}>
                    <legend>{ "Tests" }</legend>
                    <div class="tests-grid">
                        <div class="tests-pick">
                            <label for="test-search" class="visually-hidden">{ "Search tests" }</label>
                            <input id="test-search" type="search" placeholder="Search files and directories"
                                value={(*search).clone()} oninput={on_search} />
                            { tests }
                        </div>
                        <div class="selection" aria-live="polite">
                            <h2>{ format!("Selected ({})", selection.len()) }</h2>
                            if selection.is_empty() {
                                <p class="hint">{ "Check test files, or whole directories, in the tree." }</p>
                            } else {
                                <ul>
                                    { for selection.iter().map(|path| html! {
                                        <li key={path.clone()}>
                                            <code>{ path.clone() }</code>
                                            <button type="button" class="remove" onclick={remove(path)}
                                                aria-label={format!("Remove {path}")}>{ "✕" }</button>
                                        </li>
                                    }) }
                                </ul>
                                <button type="button" class="link" onclick={clear}>{ "Clear all" }</button>
                            }
                        </div>
                    </div>
                    if let Some(why) = &paths_error {
                        <p class="field-error" id={error_id("tests")} role="alert">{ why.clone() }</p>
                    }
                </fieldset>
                if let Some(error) = form_error {
                    <div class="error" role="alert">
                        <p>{ error.message().to_string() }</p>
                        { for error.other_fields(&FIELDS).into_iter().map(|(field, why)| html! {
                            <p>{ format!("{field}: {why}") }</p>
                        }) }
                    </div>
                }
                <div class="actions">
                    <button type="submit" class="primary" disabled={*busy}>
                        { if *busy { "Starting…" } else { "Start run" } }
                    </button>
                </div>
            </form>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn a_pool_split_in_two_or_more_is_a_run_group_and_anything_else_a_run() {
        let paths = vec!["api".to_string()];
        let pool = RunTarget::Pool("staging".into());
        let group = submission("ann", &pool, 3, paths.clone(), Some(30)).unwrap_err();
        assert_eq!(group.hold_on_failure_minutes.given(), Some(&Some(30)));
        assert_eq!(group.shards.given(), Some(&3));
        assert_eq!(
            group.environment_label.given().map(String::as_str),
            Some("staging")
        );
        let run = submission("ann", &pool, 1, paths.clone(), None).unwrap();
        assert!(run.hold_on_failure_minutes.is_missing());
        assert_eq!(
            run.environment_label.given().cloned().flatten().as_deref(),
            Some("staging")
        );
        assert!(run.environment_id.is_missing());
        // Shards mean nothing for one environment.
        let one = submission("ann", &RunTarget::Environment(4), 5, paths, None).unwrap();
        assert_eq!(one.environment_id.given(), Some(&Some(4)));
    }

    #[wasm_bindgen_test]
    fn keyword_and_markers_are_checked_before_they_are_sent() {
        assert_eq!(selection_input(" ", ""), Ok((None, None)));
        assert_eq!(
            selection_input(" login ", "smoke"),
            Ok((Some("login".into()), Some("smoke".into())))
        );
        let (field, why) = selection_input("login", "(smoke").unwrap_err();
        assert_eq!(field, "markers");
        assert!(
            why.starts_with("Markers has unbalanced parentheses"),
            "{why}"
        );
        assert_eq!(selection_input("a;b", "").unwrap_err().0, "keyword");
    }

    #[wasm_bindgen_test]
    fn the_hold_is_optional_and_follows_the_servers_rule() {
        assert_eq!(hold_minutes("  "), Ok(None));
        assert_eq!(hold_minutes(" 30 "), Ok(Some(30)));
        assert!(hold_minutes("121").is_err());
        assert!(hold_minutes("0").is_err());
        assert!(hold_minutes("1.5").is_err());
    }
}
