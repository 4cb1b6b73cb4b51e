//! The sharing controls of an environment as one state: the reservation
//! form, the extension, the maintenance form, the request under way and
//! what the last one answered. Pure, so every transition is tested
//! without a browser; the checks are the server's own (`shared`).

use std::rc::Rc;

use chrono::{DateTime, Utc};
use shared::validate::Fields;
use shared::{ExtendReservation, Input, NewMaintenance, NewReservation, ReservationWhen};
use yew::Reducible;

use crate::api::ApiError;
use crate::format;

/// A request of the sharing controls, checked and ready to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Reserve(NewReservation),
    Extend { id: i64, minutes: i32 },
    Release(i64),
    StartMaintenance(NewMaintenance),
    EndMaintenance,
}

/// What a request is about, for where its answer is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Reserve,
    /// Extending or releasing one reservation.
    Change(i64),
    Maintenance,
}

impl Request {
    pub fn task(&self) -> Task {
        match self {
            Request::Reserve(_) => Task::Reserve,
            Request::Extend { id, .. } | Request::Release(id) => Task::Change(*id),
            Request::StartMaintenance(_) | Request::EndMaintenance => Task::Maintenance,
        }
    }
}

/// The text fields of the controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Owner,
    Minutes,
    Reason,
    ExtendMinutes,
    MaintenanceReason,
    MaintenanceUntil,
}

impl Text {
    /// The task and the API's name of the field it fills.
    pub fn field(self) -> (Option<Task>, &'static str) {
        match self {
            Text::Owner => (Some(Task::Reserve), "owner"),
            Text::Minutes => (Some(Task::Reserve), "minutes"),
            Text::Reason => (Some(Task::Reserve), "reason"),
            // Whichever reservation it was about.
            Text::ExtendMinutes => (None, "minutes"),
            Text::MaintenanceReason => (Some(Task::Maintenance), "reason"),
            Text::MaintenanceUntil => (Some(Task::Maintenance), "until"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sharing {
    /// Who reserves. One field, so that the signed-in user can take its
    /// place without touching the rest.
    pub owner: String,
    pub minutes: String,
    pub reason: String,
    pub when: ReservationWhen,
    pub extend_minutes: String,
    pub maintenance_reason: String,
    /// As a `datetime-local` input gives it, in the user's time.
    pub maintenance_until: String,
    /// The request under way: every button waits for it.
    pub busy: Option<Task>,
    /// The last refusal (ours or the server's) and what it was about.
    pub refusal: Option<(Task, ApiError)>,
    /// What the last request that went through did, in words.
    pub done: Option<(Task, String)>,
}

pub enum Action {
    Edit(Text, String),
    When(ReservationWhen),
    Sending(Task),
    Refused(Task, ApiError),
    Done(Task, String),
}

/// The minutes as typed, for the shared check: empty is left out, text
/// that is no number is of the wrong type.
fn minutes_input(raw: &str, range: &str) -> Input<i32> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Input::Missing;
    }
    raw.parse()
        .map(Input::Given)
        .unwrap_or_else(|_| Input::Wrong(format!("must be a whole number of minutes from {range}")))
}

impl Sharing {
    pub fn new(owner: String) -> Sharing {
        Sharing {
            owner,
            minutes: "30".into(),
            reason: String::new(),
            when: ReservationWhen::Now,
            extend_minutes: "30".into(),
            maintenance_reason: String::new(),
            maintenance_until: String::new(),
            busy: None,
            refusal: None,
            done: None,
        }
    }

    /// What field `text` holds.
    pub fn value(&self, text: Text) -> &str {
        match text {
            Text::Owner => &self.owner,
            Text::Minutes => &self.minutes,
            Text::Reason => &self.reason,
            Text::ExtendMinutes => &self.extend_minutes,
            Text::MaintenanceReason => &self.maintenance_reason,
            Text::MaintenanceUntil => &self.maintenance_until,
        }
    }

    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Edit(text, value) => {
                let slot = match text {
                    Text::Owner => &mut self.owner,
                    Text::Minutes => &mut self.minutes,
                    Text::Reason => &mut self.reason,
                    Text::ExtendMinutes => &mut self.extend_minutes,
                    Text::MaintenanceReason => &mut self.maintenance_reason,
                    Text::MaintenanceUntil => &mut self.maintenance_until,
                };
                *slot = value;
                self.forget(text.field());
            }
            Action::When(when) => {
                self.when = when;
                self.forget((Some(Task::Reserve), "when"));
            }
            Action::Sending(task) => {
                self.busy = Some(task);
                self.refusal = None;
                self.done = None;
            }
            Action::Refused(task, error) => {
                self.busy = None;
                self.refusal = Some((task, error));
            }
            Action::Done(task, what) => {
                self.busy = None;
                self.refusal = None;
                self.done = Some((task, what));
                match task {
                    Task::Reserve => self.reason.clear(),
                    Task::Maintenance => {
                        self.maintenance_reason.clear();
                        self.maintenance_until.clear();
                    }
                    Task::Change(_) => {}
                }
            }
        }
    }

    /// Takes back the complaint about a field the user has changed.
    fn forget(&mut self, (task, field): (Option<Task>, &str)) {
        let Some((refused, error)) = &self.refusal else {
            return;
        };
        let about = match task {
            Some(task) => *refused == task,
            None => matches!(refused, Task::Change(_)),
        };
        if about && error.field(field).is_some() {
            self.refusal = error.without_field(field).map(|rest| (*refused, rest));
        }
    }

    /// The refusal of `task`, if the last one was about it.
    pub fn refusal_of(&self, task: Task) -> Option<&ApiError> {
        self.refusal
            .as_ref()
            .filter(|(refused, _)| *refused == task)
            .map(|(_, error)| error)
    }

    /// What is wrong with `field` of `task`'s form.
    pub fn problem(&self, task: Task, field: &str) -> Option<String> {
        self.refusal_of(task).and_then(|error| error.field(field))
    }

    /// What the last request did, if it was `task`.
    pub fn done_of(&self, task: Task) -> Option<&str> {
        self.done
            .as_ref()
            .filter(|(done, _)| *done == task)
            .map(|(_, what)| what.as_str())
    }

    /// The reservation to send, checked with the server's rules; the owner
    /// must be given here, so that others see who holds the environment.
    pub fn reservation(&self) -> Result<NewReservation, ApiError> {
        let reason = self.reason.trim();
        let body = NewReservation {
            minutes: minutes_input(&self.minutes, "1 to 480"),
            reason: if reason.is_empty() {
                Input::Missing
            } else {
                Input::Given(Some(reason.to_string()))
            },
            when: Input::Given(self.when),
            owner: Input::Given(Some(self.owner.trim().to_string())),
        };
        let mut fields = Fields::default();
        if self.owner.trim().is_empty() {
            fields.add("owner", "must not be empty: say who it is for");
        }
        body.check(&mut fields);
        if fields.is_empty() {
            Ok(body)
        } else {
            Err(ApiError::invalid(fields.into_inner()))
        }
    }

    /// The minutes to add to a reservation.
    pub fn extension(&self) -> Result<i32, ApiError> {
        ExtendReservation {
            minutes: minutes_input(&self.extend_minutes, "1 to 480"),
        }
        .check()
        .map_err(|why| ApiError::invalid_field("minutes", why))
    }

    /// The maintenance to start, checked as the server will at `now`.
    pub fn maintenance(&self, now: DateTime<Utc>) -> Result<NewMaintenance, ApiError> {
        let typed = self.maintenance_until.trim();
        let until = match format::from_local_input(typed) {
            Some(at) => Input::Given(Some(at)),
            None if typed.is_empty() => Input::Missing,
            None => Input::Wrong("must be a date and time".into()),
        };
        let body = NewMaintenance {
            reason: Input::Given(self.maintenance_reason.clone()),
            until,
        };
        body.check(now).map(|_| body).map_err(ApiError::invalid)
    }
}

impl Reducible for Sharing {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = Rc::unwrap_or_clone(self);
        next.apply(action);
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ErrorCode;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn applied(actions: Vec<Action>) -> Sharing {
        let mut sharing = Sharing::new("alice".into());
        for action in actions {
            sharing.apply(action);
        }
        sharing
    }

    fn now() -> DateTime<Utc> {
        format::from_ms(format::now_ms()).unwrap_or_default()
    }

    #[wasm_bindgen_test]
    fn a_reservation_is_checked_like_the_server_checks_it() {
        let sharing = applied(vec![Action::Edit(Text::Reason, "  a look ".into())]);
        let body = sharing.reservation();
        assert_eq!(
            body.as_ref()
                .map(|b| (b.minutes.given().copied(), b.when.given().copied())),
            Ok((Some(30), Some(ReservationWhen::Now)))
        );
        assert_eq!(
            body.map(|b| b.reason),
            Ok(Input::Given(Some("a look".to_string())))
        );

        let bad = applied(vec![
            Action::Edit(Text::Owner, "  ".into()),
            Action::Edit(Text::Minutes, "481".into()),
        ]);
        let error = bad.reservation().err();
        assert_eq!(error.as_ref().map(|e| e.status), Some(422));
        assert!(error.as_ref().and_then(|e| e.field("owner")).is_some());
        assert_eq!(
            error.and_then(|e| e.field("minutes")).as_deref(),
            Some("must be from 1 to 480 minutes")
        );
        let words = applied(vec![Action::Edit(Text::Minutes, "half an hour".into())]);
        assert!(words
            .reservation()
            .is_err_and(|e| e.field("minutes").is_some()));
    }

    #[wasm_bindgen_test]
    fn a_complaint_goes_when_its_field_is_edited_and_only_then() {
        let refused = ApiError::invalid(
            [
                ("minutes".to_string(), "too long".to_string()),
                ("reason".to_string(), "too long".to_string()),
            ]
            .into_iter()
            .collect(),
        );
        let mut sharing = applied(vec![
            Action::Sending(Task::Reserve),
            Action::Refused(Task::Reserve, refused),
        ]);
        assert_eq!(sharing.busy, None);
        // The maintenance form's reason is another field.
        sharing.apply(Action::Edit(Text::MaintenanceReason, "x".into()));
        assert!(sharing.problem(Task::Reserve, "reason").is_some());
        sharing.apply(Action::Edit(Text::Minutes, "20".into()));
        assert_eq!(sharing.problem(Task::Reserve, "minutes"), None);
        assert!(sharing.problem(Task::Reserve, "reason").is_some());
        sharing.apply(Action::Edit(Text::Reason, "short".into()));
        assert_eq!(sharing.refusal, None);
    }

    #[wasm_bindgen_test]
    fn a_conflict_stays_with_its_task_until_the_next_request() {
        let busy = ApiError::new(
            409,
            ErrorCode::Conflict,
            "environment 7 is busy with run 42",
        );
        let mut sharing = applied(vec![
            Action::Sending(Task::Reserve),
            Action::Refused(Task::Reserve, busy),
        ]);
        assert!(sharing.refusal_of(Task::Reserve).is_some());
        assert!(sharing.refusal_of(Task::Maintenance).is_none());
        sharing.apply(Action::When(ReservationWhen::Next));
        assert!(
            sharing.refusal_of(Task::Reserve).is_some(),
            "no field of its own"
        );
        sharing.apply(Action::Sending(Task::Reserve));
        assert_eq!(sharing.busy, Some(Task::Reserve));
        assert_eq!(sharing.refusal, None);
        sharing.apply(Action::Done(Task::Reserve, "Reserved.".into()));
        assert_eq!(sharing.done_of(Task::Reserve), Some("Reserved."));
        assert_eq!(sharing.done_of(Task::Maintenance), None);
        assert_eq!(sharing.busy, None);
    }

    #[wasm_bindgen_test]
    fn extensions_and_releases_are_about_one_reservation() {
        let sharing = applied(vec![Action::Edit(Text::ExtendMinutes, "0".into())]);
        let error = sharing.extension().err();
        assert!(error.as_ref().and_then(|e| e.field("minutes")).is_some());
        let mut sharing = applied(vec![
            Action::Sending(Task::Change(4)),
            Action::Refused(
                Task::Change(4),
                error.unwrap_or_else(|| ApiError::new(0, ErrorCode::Internal, "")),
            ),
        ]);
        assert!(sharing.problem(Task::Change(4), "minutes").is_some());
        assert!(sharing.problem(Task::Change(5), "minutes").is_none());
        sharing.apply(Action::Edit(Text::ExtendMinutes, "15".into()));
        assert_eq!(sharing.refusal, None);
        assert_eq!(sharing.extension().ok(), Some(15));
        assert_eq!(Request::Release(4).task(), Task::Change(4));
        assert_eq!(
            Request::Extend { id: 4, minutes: 1 }.task(),
            Task::Change(4)
        );
    }

    #[wasm_bindgen_test]
    fn maintenance_needs_a_reason_and_a_future_end_if_any() {
        let sharing = applied(vec![Action::Edit(
            Text::MaintenanceUntil,
            "2000-01-01T10:00".into(),
        )]);
        let error = sharing.maintenance(now()).err();
        assert!(error.as_ref().and_then(|e| e.field("reason")).is_some());
        assert_eq!(
            error.and_then(|e| e.field("until")).as_deref(),
            Some("must be in the future")
        );
        let sharing = applied(vec![
            Action::Edit(Text::MaintenanceReason, "new disks".into()),
            Action::Edit(Text::MaintenanceUntil, "2999-01-01T10:00".into()),
        ]);
        let body = sharing.maintenance(now());
        assert!(body
            .as_ref()
            .is_ok_and(|b| b.until.given().is_some_and(Option::is_some)));
        let mut sharing = applied(vec![Action::Edit(Text::MaintenanceReason, "disks".into())]);
        assert!(sharing
            .maintenance(now())
            .is_ok_and(|b| b.until == Input::Missing));
        sharing.apply(Action::Done(Task::Maintenance, "Offline.".into()));
        assert!(sharing.maintenance_reason.is_empty());
    }
}
