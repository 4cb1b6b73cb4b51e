//! Pieces of pages, each a small component.

pub mod api_banner;
pub mod elapsed;
pub mod environment_picker;
pub mod field;
pub mod form_error;
pub mod health_summary;
pub mod history_strip;
pub mod log_view;
pub mod nav;
pub mod pagination;
pub mod progress;
pub mod quick_run;
pub mod run_link;
pub mod run_target_fields;
pub mod run_trend;
pub mod status_badge;
pub mod test_tree;
