//! Whether the API can be reached, as the last calls saw it. Every poller
//! reports here; the banner shows the problem until a call gets through.

use std::rc::Rc;

use yew::prelude::*;

use crate::api::ApiError;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Connectivity {
    /// Why the API cannot be reached, or `None` when it answered last.
    pub problem: Option<String>,
}

pub enum ConnectivityAction {
    Reached,
    Lost(String),
}

impl Reducible for Connectivity {
    type Action = ConnectivityAction;

    fn reduce(self: Rc<Self>, action: ConnectivityAction) -> Rc<Self> {
        let problem = match action {
            ConnectivityAction::Reached => None,
            ConnectivityAction::Lost(why) => Some(why),
        };
        if problem == self.problem {
            self
        } else {
            Rc::new(Connectivity { problem })
        }
    }
}

/// What pollers get from the context: a way to report, which never
/// changes, so reporting never re-renders them.
#[derive(Clone, PartialEq)]
pub struct ConnectivityReporter(pub UseReducerDispatcher<Connectivity>);

impl ConnectivityReporter {
    /// Any answer from the service proves it reachable; only a missing
    /// answer or a gateway/database error counts as lost.
    pub fn report<T>(&self, result: &Result<T, ApiError>) {
        match result {
            Err(error) if error.is_unreachable() => self
                .0
                .dispatch(ConnectivityAction::Lost(error.message().to_string())),
            _ => self.0.dispatch(ConnectivityAction::Reached),
        }
    }
}

#[hook]
pub fn use_connectivity_reporter() -> Option<ConnectivityReporter> {
    use_context::<ConnectivityReporter>()
}
