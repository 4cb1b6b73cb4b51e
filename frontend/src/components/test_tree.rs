//! A searchable tree of the test catalog with checkboxes; checking a
//! directory takes the whole directory.

use std::rc::Rc;

use shared::CatalogFile;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::tree::{covering, file_matches, DirNode};

/// Directories are open from the start when the catalog is this small.
const OPEN_UP_TO_FILES: usize = 80;

#[derive(Properties, PartialEq)]
pub struct TestTreeProps {
    pub root: Rc<DirNode>,
    pub selection: Rc<Vec<String>>,
    /// Lower-case text to filter by; empty shows everything.
    pub search: AttrValue,
    /// The path and whether it is now checked.
    pub on_toggle: Callback<(String, bool)>,
}

fn toggle_handler(on_toggle: &Callback<(String, bool)>, path: &str) -> Callback<Event> {
    let on_toggle = on_toggle.clone();
    let path = path.to_string();
    Callback::from(move |event: Event| {
        let input: HtmlInputElement = event.target_unchecked_into();
        on_toggle.emit((path.clone(), input.checked()));
    })
}

fn files_label(count: usize) -> String {
    match count {
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    }
}

/// A checkbox id from a path, unique and valid in HTML.
fn checkbox_id(path: &str) -> String {
    let safe: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("pick-{safe}-{:x}", path.len())
}

#[derive(Properties, PartialEq)]
struct FileItemProps {
    file: CatalogFile,
    checked: bool,
    covered: bool,
    on_toggle: Callback<(String, bool)>,
}

#[component]
fn FileItem(props: &FileItemProps) -> Html {
    let file = &props.file;
    let id = checkbox_id(&file.path);
    html! {
        <li class="tree-file">
            <input type="checkbox" id={id.clone()} checked={props.checked} disabled={props.covered}
                aria-label={format!("Test file {}", file.path)}
                onchange={toggle_handler(&props.on_toggle, &file.path)} />
            <label for={id} title={file.path.clone()}>{ file.name.clone() }</label>
        </li>
    }
}

#[derive(Properties, PartialEq)]
struct DirItemProps {
    dir: Rc<DirNode>,
    selection: Rc<Vec<String>>,
    search: AttrValue,
    open: bool,
    on_toggle: Callback<(String, bool)>,
}

#[component]
fn DirItem(props: &DirItemProps) -> Html {
    let open = use_state(|| props.open);
    let dir = &props.dir;
    let covered = covering(&props.selection, &dir.path).is_some();
    let checked = covered || props.selection.contains(&dir.path);
    let id = checkbox_id(&dir.path);
    // A search shows every match, whatever was folded.
    let expanded = *open || !props.search.is_empty();
    let fold = {
        let open = open.clone();
        Callback::from(move |_: MouseEvent| open.set(!*open))
    };
    html! {
        <li class="tree-dir">
            <div class="tree-row">
                <button type="button" class="twisty" onclick={fold}
                    aria-expanded={expanded.to_string()}
                    aria-label={format!("{} {}", if expanded { "Fold" } else { "Unfold" }, dir.path)}>
                    { if expanded { "▾" } else { "▸" } }
                </button>
                <input type="checkbox" id={id.clone()} {checked} disabled={covered}
                    aria-label={format!("Directory {} (all of it)", dir.path)}
                    onchange={toggle_handler(&props.on_toggle, &dir.path)} />
                <label for={id} class="dir-name">{ format!("{}/", dir.name) }</label>
                <span class="count">{ files_label(dir.file_count()) }</span>
            </div>
            if expanded {
                <Children dir={props.dir.clone()} selection={props.selection.clone()}
                    search={props.search.clone()} open={props.open}
                    on_toggle={props.on_toggle.clone()} />
            }
        </li>
    }
}

#[derive(Properties, PartialEq)]
struct ChildrenProps {
    dir: Rc<DirNode>,
    selection: Rc<Vec<String>>,
    search: AttrValue,
    open: bool,
    on_toggle: Callback<(String, bool)>,
}

#[component]
fn Children(props: &ChildrenProps) -> Html {
    let dir = &props.dir;
    let search = props.search.as_str();
    // Inside a directory whose own path matches, show everything.
    let needle = if !search.is_empty() && dir.path.to_ascii_lowercase().contains(search) {
        ""
    } else {
        search
    };
    let dirs = dir.dirs.iter().filter(|d| d.matches(needle)).map(|d| {
        html! {
            <DirItem key={d.path.clone()} dir={Rc::new(d.clone())}
                selection={props.selection.clone()} search={AttrValue::from(needle.to_string())}
                open={props.open} on_toggle={props.on_toggle.clone()} />
        }
    });
    let files = dir
        .files
        .iter()
        .filter(|f| file_matches(f, needle))
        .map(|f| {
            let covered = covering(&props.selection, &f.path).is_some();
            html! {
                <FileItem key={f.path.clone()} file={f.clone()}
                    checked={covered || props.selection.contains(&f.path)} {covered}
                    on_toggle={props.on_toggle.clone()} />
            }
        });
    html! {
        <ul>
            { for dirs }
            { for files }
        </ul>
    }
}

#[component]
pub fn TestTree(props: &TestTreeProps) -> Html {
    if !props.root.matches(&props.search) {
        return html! { <p class="empty">{ "No test file matches the search." }</p> };
    }
    html! {
        <div class="tree" role="group" aria-label="Test files and directories">
            <Children dir={props.root.clone()} selection={props.selection.clone()}
                search={props.search.clone()} open={props.root.file_count() <= OPEN_UP_TO_FILES}
                on_toggle={props.on_toggle.clone()} />
        </div>
    }
}
