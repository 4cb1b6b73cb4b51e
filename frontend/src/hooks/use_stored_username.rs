//! The user name, remembered in local storage between visits.

use wasm_bindgen::JsValue;
use web_sys::Storage;
use yew::prelude::*;

const KEY: &str = "test-executor.username";

/// Local storage, when the browser lets us have it.
fn storage() -> Option<Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// Stored as a JSON string (`"alice"`); the browser's JSON keeps serde's
/// JSON parser out of the wasm.
pub fn remember_username(name: &str) {
    // Storage may be full or disabled; remembering is a convenience only.
    if let (Some(storage), Ok(json)) = (storage(), js_sys::JSON::stringify(&JsValue::from(name))) {
        let _ = storage.set_item(KEY, &String::from(json));
    }
}

fn stored_username() -> Option<String> {
    let json = storage()?.get_item(KEY).ok()??;
    js_sys::JSON::parse(&json).ok()?.as_string()
}

/// The remembered user name (empty the first time) and its state handle.
#[hook]
pub fn use_stored_username() -> UseStateHandle<String> {
    use_state(|| stored_username().unwrap_or_default())
}
