//! Webhooks: where the service tells other systems that a run finished or
//! failed, an environment is free or a reservation is about to end; and
//! the log of each delivery.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::input::Input;
use crate::validate::Fields;

/// The events a webhook may subscribe to.
pub const WEBHOOK_EVENTS: [&str; 4] = [
    "run.finished",
    "run.failed",
    "environment.free",
    "reservation.expiring",
];
pub const MAX_WEBHOOK_URL_CHARS: usize = 2000;
pub const MAX_WEBHOOK_SECRET_CHARS: usize = 256;

/// How a delivery's body is shaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"event", "at", "run" | "environment" | "reservation"}`.
    #[default]
    Json,
    /// The same fields plus `"text"`, a line a Slack (or Mattermost,
    /// Rocket.Chat) incoming webhook shows as a message.
    Slack,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
        }
    }

    pub fn parse(raw: &str) -> Result<WebhookFormat, String> {
        match raw.trim() {
            "json" => Ok(WebhookFormat::Json),
            "slack" => Ok(WebhookFormat::Slack),
            other => Err(format!("must be \"json\" or \"slack\", not {other:?}")),
        }
    }
}

/// Body of `POST /api/webhooks`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewWebhook {
    /// An `http` or `https` URL the events are POSTed to.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, example = "https://ci.example.com/hooks/tests")
    )]
    pub url: Input<String>,
    /// One or more of `run.finished`, `run.failed`, `environment.free`,
    /// `reservation.expiring`.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<String>, required = true, min_items = 1,
            example = json!(["run.failed"]))
    )]
    pub events: Input<Vec<String>>,
    /// When given, each delivery carries `X-Executor-Signature:
    /// sha256=<hex HMAC-SHA256 of the body with this secret>`. Never shown
    /// again.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 256))]
    pub secret: Input<Option<String>>,
    /// `json` (default) or `slack`.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "json"))]
    pub format: Input<Option<String>>,
}

/// A [`NewWebhook`] whose every field passed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub secret: Option<String>,
    pub format: WebhookFormat,
}

impl NewWebhook {
    /// Checks every field; the problems go to `fields`.
    pub fn check(&self, fields: &mut Fields) -> Option<CheckedWebhook> {
        let url = fields.check(
            "url",
            self.url.require("is required").and_then(|u| webhook_url(u)),
        );
        let events = fields.check(
            "events",
            self.events
                .require("is required")
                .and_then(|e| webhook_events(e)),
        );
        let secret = fields.check(
            "secret",
            self.secret
                .optional()
                .map(|s| s.cloned().flatten())
                .and_then(|s| s.map(|s| webhook_secret(&s)).transpose()),
        );
        let format = fields.check(
            "format",
            self.format
                .optional()
                .map(|f| f.cloned().flatten())
                .and_then(|f| f.map_or(Ok(WebhookFormat::Json), |f| WebhookFormat::parse(&f))),
        );
        Some(CheckedWebhook {
            url: url?,
            events: events?,
            secret: secret?,
            format: format?,
        })
    }
}

/// An absolute `http` or `https` URL with a host, no spaces or control
/// characters.
pub fn webhook_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    if url.is_empty() {
        return Err("must not be empty".into());
    }
    if url.chars().count() > MAX_WEBHOOK_URL_CHARS {
        return Err(format!(
            "must be at most {MAX_WEBHOOK_URL_CHARS} characters"
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest
        }
        Some((scheme, _)) => {
            return Err(format!("must be an http or https URL, not {scheme}:"));
        }
        None => return Err("must be an absolute http or https URL (https://host/path)".into()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err("must name a host (https://host/path)".into());
    }
    Ok(url.to_string())
}

/// At least one event, each known, none twice.
pub fn webhook_events(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.is_empty() {
        return Err(format!(
            "must name at least one event: {}",
            WEBHOOK_EVENTS.join(", ")
        ));
    }
    let mut events: Vec<String> = Vec::with_capacity(raw.len());
    for event in raw {
        let event = event.trim();
        if !WEBHOOK_EVENTS.contains(&event) {
            return Err(format!(
                "{event:?} is not an event; expected some of {}",
                WEBHOOK_EVENTS.join(", ")
            ));
        }
        if events.iter().any(|e| e == event) {
            return Err(format!("names {event:?} twice"));
        }
        events.push(event.to_string());
    }
    Ok(events)
}

pub fn webhook_secret(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("must not be empty (leave it out for unsigned deliveries)".into());
    }
    if raw.chars().count() > MAX_WEBHOOK_SECRET_CHARS {
        return Err(format!(
            "must be at most {MAX_WEBHOOK_SECRET_CHARS} characters"
        ));
    }
    Ok(raw.to_string())
}

/// A webhook as the API shows it: never its secret, only whether it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub format: WebhookFormat,
    /// Deliveries are signed (`X-Executor-Signature`).
    pub signed: bool,
    pub created_at: DateTime<Utc>,
    /// Deliveries not sent yet (waiting or retrying).
    #[serde(default)]
    pub pending: i64,
    /// Deliveries given up on.
    #[serde(default)]
    pub failed: i64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not sent yet, or retrying after a failure.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Retried for a day without success; given up.
    Failed,
}

/// One event's delivery to one webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: String,
    /// The run, environment or reservation it is about.
    pub subject_id: i64,
    pub occurred_at: DateTime<Utc>,
    pub state: DeliveryState,
    pub attempts: i32,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it is tried next, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        assert!(webhook_url("https://ci.example.com/hook").is_ok());
        assert!(webhook_url("http://127.0.0.1:9000").is_ok());
        assert!(webhook_url("http://[::1]:80/x").is_ok());
        assert!(webhook_url("ftp://example.com")
            .unwrap_err()
            .contains("http"));
        assert!(webhook_url("example.com/hook").is_err());
        assert!(webhook_url("http:///path").unwrap_err().contains("host"));
        assert!(webhook_url("http://a b").is_err());
        assert!(webhook_url("  ").is_err());
    }

    #[test]
    fn events_must_be_known_and_named_once() {
        assert_eq!(
            webhook_events(&["run.failed".into()]).unwrap(),
            vec!["run.failed"]
        );
        assert!(webhook_events(&[]).is_err());
        assert!(webhook_events(&["run.started".into()])
            .unwrap_err()
            .contains("run.started"));
        assert!(webhook_events(&["run.failed".into(), "run.failed".into()]).is_err());
    }

    #[test]
    fn every_bad_field_is_named() {
        let new: NewWebhook = serde_json::from_value(serde_json::json!({
            "url": "file:///etc/passwd", "events": "run.failed", "secret": "", "format": "xml"
        }))
        .unwrap();
        let mut fields = Fields::default();
        assert!(new.check(&mut fields).is_none());
        let fields = fields.into_inner();
        for name in ["url", "events", "secret", "format"] {
            assert!(fields.contains_key(name), "{name}: {fields:?}");
        }
    }
}
