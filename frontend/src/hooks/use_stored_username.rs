//! The user name, remembered in local storage between visits.

use gloo_storage::{LocalStorage, Storage};
use yew::prelude::*;

const KEY: &str = "test-executor.username";

pub fn remember_username(name: &str) {
    // Storage may be full or disabled; remembering is a convenience only.
    let _ = LocalStorage::set(KEY, name);
}

/// The remembered user name (empty the first time) and its state handle.
#[hook]
pub fn use_stored_username() -> UseStateHandle<String> {
    use_state(|| LocalStorage::get::<String>(KEY).unwrap_or_default())
}
