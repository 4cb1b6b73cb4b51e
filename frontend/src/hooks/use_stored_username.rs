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

/// The user name runs are asked for with: the logged-in user's (a run is
/// its caller's), else the remembered one (empty the first time).
#[hook]
pub fn use_stored_username() -> UseStateHandle<String> {
    let session = super::use_session::use_session();
    let name = use_state(|| {
        session
            .username()
            .map(str::to_string)
            .or_else(stored_username)
            .unwrap_or_default()
    });
    {
        let name = name.clone();
        use_effect_with(session.username().map(str::to_string), move |logged_in| {
            if let Some(logged_in) = logged_in {
                name.set(logged_in.clone());
            }
        });
    }
    name
}
