//! Types and rules shared by the backend and the SPA: every request and
//! answer body of the REST API, the validation both sides apply, and the
//! small computations both sides must agree on.

pub mod ansi;
pub mod artifact;
pub mod catalog;
pub mod environment;
pub mod error;
pub mod health;
pub mod identity;
pub mod input;
pub mod insights;
pub mod query;
pub mod run;
pub mod run_group;
pub mod schedule;
pub mod selection;
pub mod service;
#[cfg(feature = "sql")]
pub mod sql;
pub mod stats;
pub mod validate;
pub mod webhook;

pub use artifact::Artifact;
pub use catalog::{Catalog, CatalogFile, UploadedFile};
pub use environment::{
    Environment, EnvironmentSettings, EnvironmentState, ExtendReservation, Hold, Maintenance,
    NewEnvironment, NewMaintenance, NewReservation, Reservation, ReservationKind,
    ReservationRequest, ReservationState, ReservationWhen, SettingsChanges, UpdateEnvironment,
};
pub use error::{ApiErrorBody, ErrorCode, ErrorDetail, FieldErrors};
pub use health::{EnvironmentHealth, EnvironmentSpecificFailure, PassedElsewhere};
pub use identity::{
    ApiToken, AuditEntry, AuditPage, AuditQuery, AuthStatus, CreatedToken, Login, Me, NewToken,
    PasswordChange, Role, Setup, User, UserForm,
};
pub use input::Input;
pub use insights::{
    FailingTest, FlakyTest, HistoryItem, HistoryQuery, Insights, InsightsQuery, SlowTest,
};
pub use run::{
    CaseOutcome, CaseResult, CheckedRun, LogChunk, LogQuery, NewRun, RerunQuery, Run, RunListQuery,
    RunPage, RunStatus, RunSummary, RunTarget,
};
pub use run_group::{CheckedRunGroup, NewRunGroup, RunGroup};
pub use schedule::{CheckedSchedule, NewSchedule, Schedule};
pub use selection::Marker;
pub use service::Health;
pub use webhook::{CheckedWebhook, Delivery, DeliveryState, NewWebhook, Webhook, WebhookFormat};

/// Environments are numbered 1 to 100.
pub const MIN_ENVIRONMENT_ID: i32 = 1;
pub const MAX_ENVIRONMENT_ID: i32 = 100;
/// The largest page of the run list.
pub const MAX_PER_PAGE: i64 = 500;
pub const DEFAULT_PER_PAGE: i64 = 50;
/// The most paths one run may name.
pub const MAX_PATHS: usize = 1000;
