//! Submitting a new run (or run group), shared by the new-run page and the
//! quick "run it now" form: one request at a time, the user name
//! remembered, the new run opened on success, the server's complaint kept
//! otherwise.

use shared::{NewRun, NewRunGroup};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{self, ApiError};
use crate::app::Route;
use crate::hooks::use_stored_username::remember_username;

pub struct StartRun {
    /// The server's last refusal, shown next to its fields.
    pub error: UseStateHandle<Option<ApiError>>,
    /// A request is under way: the submit button is disabled.
    pub busy: UseStateHandle<bool>,
    /// Sends the run; ignored while one is under way (double clicks).
    pub start: Callback<NewRun>,
    /// Sends a run group, likewise.
    pub start_group: Callback<NewRunGroup>,
}

#[hook]
pub fn use_start_run() -> StartRun {
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let navigator = use_navigator();
    let group_navigator = navigator.clone();
    let start = {
        let (error, busy) = (error.clone(), busy.clone());
        Callback::from(move |new_run: NewRun| {
            if *busy {
                return;
            }
            busy.set(true);
            let (error, busy, navigator) = (error.clone(), busy.clone(), navigator.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::runs::create(&new_run).await {
                    Ok(run) => {
                        remember_username(run.username.trim());
                        if let Some(navigator) = navigator {
                            navigator.push(&Route::Run { id: run.id });
                        }
                    }
                    Err(why) => {
                        error.set(Some(why));
                        busy.set(false);
                    }
                }
            });
        })
    };
    let start_group = {
        let (error, busy, navigator) = (error.clone(), busy.clone(), group_navigator);
        Callback::from(move |new_group: NewRunGroup| {
            if *busy {
                return;
            }
            busy.set(true);
            let (error, busy, navigator) = (error.clone(), busy.clone(), navigator.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::run_groups::create(&new_group).await {
                    Ok(group) => {
                        remember_username(group.username.trim());
                        if let Some(navigator) = navigator {
                            navigator.push(&Route::RunGroup { id: group.id });
                        }
                    }
                    Err(why) => {
                        error.set(Some(why));
                        busy.set(false);
                    }
                }
            });
        })
    };
    StartRun {
        error,
        busy,
        start,
        start_group,
    }
}

/// Takes back the server's complaint about `field`: called when the user
/// edits that field.
pub fn forget_field(
    error: &UseStateHandle<Option<ApiError>>,
    field: &'static str,
) -> impl Fn() + 'static {
    let error = error.clone();
    move || error.set(error.as_ref().and_then(|e| e.without_field(field)))
}
