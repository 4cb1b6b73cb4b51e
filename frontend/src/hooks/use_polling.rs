//! Polls an API call on an interval and re-renders only when its answer
//! changes. The interval handle lives in the effect and is dropped by its
//! cleanup, so polling stops when the component goes or its inputs change.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use gloo_timers::callback::Interval;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::api::ApiError;
use crate::hooks::use_connectivity::use_connectivity_reporter;

/// The last answer of a polled call.
pub struct Polling<T: 'static> {
    data: UseStateHandle<Option<T>>,
    error: UseStateHandle<Option<ApiError>>,
    refresh: Callback<()>,
}

impl<T> Polling<T> {
    /// The last successful answer, kept while later calls fail.
    pub fn data(&self) -> Option<&T> {
        (*self.data).as_ref()
    }

    /// The error of the last call, `None` once one succeeds again.
    pub fn error(&self) -> Option<&ApiError> {
        (*self.error).as_ref()
    }

    /// A callback that calls again now, without waiting for the next tick.
    pub fn refresh_callback(&self) -> Callback<()> {
        self.refresh.clone()
    }
}

/// A call of the API, boxed: the polling itself is then one copy per type
/// of answer and of `deps`, not one per call site, which the wasm feels.
type Fetch<D, T> = Rc<dyn Fn(D) -> Pin<Box<dyn Future<Output = Result<T, ApiError>>>>>;

/// Calls `fetch(deps)` now and then every `period_ms` milliseconds; with
/// `period_ms` of `None`, once per change of `deps`. A call never overlaps
/// the previous one, and an answer that arrives after `deps` changed is
/// dropped.
#[hook]
pub fn use_polling<T, D, F, Fut>(deps: D, period_ms: Option<u32>, fetch: F) -> Polling<T>
where
    T: PartialEq + 'static,
    D: PartialEq + Clone + 'static,
    F: Fn(D) -> Fut + 'static,
    Fut: Future<Output = Result<T, ApiError>> + 'static,
{
    let fetch: Fetch<D, T> = Rc::new(move |deps| Box::pin(fetch(deps)));
    use_boxed_polling(deps, period_ms, fetch)
}

#[hook]
fn use_boxed_polling<T, D>(deps: D, period_ms: Option<u32>, fetch: Fetch<D, T>) -> Polling<T>
where
    T: PartialEq + 'static,
    D: PartialEq + Clone + 'static,
{
    let data = use_state_eq(|| None::<T>);
    let error = use_state_eq(|| None::<ApiError>);
    let reporter = use_connectivity_reporter();
    // Each run of the effect is one generation; answers of older ones are
    // dropped.
    let generation = use_mut_ref(|| 0_u64);
    let tick_now = use_mut_ref(|| None::<Rc<dyn Fn()>>);

    {
        let data = data.clone();
        let error = error.clone();
        let tick_now = tick_now.clone();
        use_effect_with((deps, period_ms), move |(deps, period_ms)| {
            let mine = {
                let mut generation = generation.borrow_mut();
                *generation += 1;
                *generation
            };
            let in_flight = Rc::new(Cell::new(false));
            let deps = deps.clone();
            let tick: Rc<dyn Fn()> = {
                let generation = generation.clone();
                Rc::new(move || {
                    if in_flight.replace(true) {
                        return;
                    }
                    let answer = fetch(deps.clone());
                    let in_flight = in_flight.clone();
                    let generation = generation.clone();
                    let data = data.clone();
                    let error = error.clone();
                    let reporter = reporter.clone();
                    spawn_local(async move {
                        let result = answer.await;
                        in_flight.set(false);
                        if *generation.borrow() != mine {
                            return;
                        }
                        if let Some(reporter) = &reporter {
                            reporter.report(&result);
                        }
                        // Both are `use_state_eq`: an unchanged answer does
                        // not re-render.
                        match result {
                            Ok(value) => {
                                error.set(None);
                                data.set(Some(value));
                            }
                            Err(why) => error.set(Some(why)),
                        }
                    });
                })
            };
            tick();
            let interval = period_ms.map(|period| {
                let tick = tick.clone();
                Interval::new(period, move || tick())
            });
            *tick_now.borrow_mut() = Some(tick);
            move || {
                *generation.borrow_mut() += 1;
                *tick_now.borrow_mut() = None;
                drop(interval);
            }
        });
    }

    let refresh = {
        let tick_now = tick_now.clone();
        Callback::from(move |()| {
            let tick = tick_now.borrow().clone();
            if let Some(tick) = tick {
                tick();
            }
        })
    };
    Polling {
        data,
        error,
        refresh,
    }
}
