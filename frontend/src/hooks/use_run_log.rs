//! Follows a run's log: fetches it by offset, only what is new, until the
//! service says it is complete. Each answer becomes one piece that is
//! rendered once and never again.

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Interval;
use shared::LogChunk;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::ansi::{AnsiParser, Segment};
use crate::api::{self, ApiError};
use crate::hooks::use_connectivity::use_connectivity_reporter;

/// One answer's worth of styled log; compared by identity, since a piece
/// never changes once made.
#[derive(Debug, Clone)]
pub struct LogPiece(pub Rc<Vec<Segment>>);

impl PartialEq for LogPiece {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

#[derive(Debug, Default)]
pub struct RunLog {
    pub pieces: Vec<LogPiece>,
    pub next_offset: i64,
    pub complete: bool,
    pub error: Option<ApiError>,
    parser: AnsiParser,
}

pub enum LogAction {
    Append(LogChunk),
    Failed(ApiError),
}

impl Reducible for RunLog {
    type Action = LogAction;

    fn reduce(self: Rc<Self>, action: LogAction) -> Rc<Self> {
        match action {
            LogAction::Append(chunk) => {
                // An answer for an offset we are no longer at (a retry that
                // crossed another) is dropped.
                if chunk.offset != self.next_offset
                    || (chunk.content.is_empty()
                        && chunk.complete == self.complete
                        && self.error.is_none())
                {
                    return self;
                }
                let mut parser = self.parser.clone();
                let mut pieces = self.pieces.clone();
                let segments = parser.feed(&chunk.content);
                if !segments.is_empty() {
                    pieces.push(LogPiece(Rc::new(segments)));
                }
                Rc::new(RunLog {
                    pieces,
                    next_offset: chunk.next_offset.max(self.next_offset),
                    complete: chunk.complete,
                    error: None,
                    parser,
                })
            }
            LogAction::Failed(error) => {
                if self.error.as_ref() == Some(&error) {
                    return self;
                }
                Rc::new(RunLog {
                    pieces: self.pieces.clone(),
                    next_offset: self.next_offset,
                    complete: self.complete,
                    error: Some(error),
                    parser: self.parser.clone(),
                })
            }
        }
    }
}

/// At most this many fetches in a row while the service still has more.
const MAX_CATCH_UP: usize = 64;

/// The log of run `id`, polled every `period_ms` until complete.
#[hook]
pub fn use_run_log(id: i64, period_ms: u32) -> UseReducerHandle<RunLog> {
    let log = use_reducer(RunLog::default);
    let reporter = use_connectivity_reporter();
    let complete = log.complete;

    {
        let log = log.clone();
        use_effect_with((id, complete), move |&(id, complete)| {
            let in_flight = Rc::new(Cell::new(false));
            let alive = Rc::new(Cell::new(true));
            let tick = {
                let alive = alive.clone();
                move || {
                    if complete || in_flight.replace(true) {
                        return;
                    }
                    let log = log.clone();
                    let in_flight = in_flight.clone();
                    let alive = alive.clone();
                    let reporter = reporter.clone();
                    spawn_local(async move {
                        // Catch up with everything there is, then wait for
                        // the next tick.
                        for _ in 0..MAX_CATCH_UP {
                            if !alive.get() {
                                break;
                            }
                            // The handle reads the latest state.
                            let offset = log.next_offset;
                            let result = api::runs::log(id, offset).await;
                            if let Some(reporter) = &reporter {
                                reporter.report(&result);
                            }
                            if !alive.get() {
                                break;
                            }
                            match result {
                                Ok(chunk) => {
                                    let more = !chunk.complete && chunk.next_offset > offset;
                                    let done = chunk.complete;
                                    log.dispatch(LogAction::Append(chunk));
                                    if done || !more {
                                        break;
                                    }
                                }
                                Err(error) => {
                                    log.dispatch(LogAction::Failed(error));
                                    break;
                                }
                            }
                        }
                        in_flight.set(false);
                    });
                }
            };
            tick();
            let interval = (!complete).then(|| Interval::new(period_ms, tick));
            move || {
                alive.set(false);
                drop(interval);
            }
        });
    }
    log
}
