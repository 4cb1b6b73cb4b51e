//! Typed access to the REST API (docs/API.md). Every call goes through
//! [`request`], which turns any answer other than 2xx into the shared
//! error body, so pages handle one error type whatever went wrong.

pub mod catalog;
pub mod environments;
pub mod identity;
pub mod insights;
pub mod reservations;
pub mod run_groups;
pub mod runs;
pub mod schedules;
pub mod service;
pub mod webhooks;

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::{ApiErrorBody, ErrorCode, ErrorDetail};
use web_sys::RequestCache;

/// An API call that did not succeed: the HTTP status (0 when no answer
/// arrived at all) and the error body of docs/API.md.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub body: ApiErrorBody,
}

impl ApiError {
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ApiErrorBody {
                error: ErrorDetail {
                    code,
                    message: message.into(),
                    fields: None,
                },
            },
        }
    }

    /// A refusal found before sending, shaped like the server's 422, so
    /// that forms show it the same way: `fields` names each bad field.
    pub fn invalid(fields: shared::FieldErrors) -> Self {
        let message = fields
            .iter()
            .map(|(field, why)| format!("{field} {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut error = ApiError::new(422, ErrorCode::Validation, message);
        error.body.error.fields = Some(fields);
        error
    }

    /// [`ApiError::invalid`] about one field.
    pub fn invalid_field(field: &str, why: String) -> Self {
        let mut fields = shared::FieldErrors::new();
        fields.insert(field.to_string(), why);
        ApiError::invalid(fields)
    }

    pub fn message(&self) -> &str {
        &self.body.error.message
    }

    /// The server's complaint about one input field, if any. A field named
    /// `paths` also collects `paths[3]`-style keys.
    pub fn field(&self, name: &str) -> Option<String> {
        let fields = self.body.error.fields.as_ref()?;
        if let Some(why) = fields.get(name) {
            return Some(why.clone());
        }
        fields
            .iter()
            .find(|(key, _)| is_field(key, name))
            .map(|(_, why)| why.clone())
    }

    /// The error once the user has changed field `name`: its complaint is
    /// dropped, and nothing is left when it was the only one.
    pub fn without_field(&self, name: &str) -> Option<ApiError> {
        let fields = self.body.error.fields.as_ref()?;
        // Inserted one by one: collecting into a map would sort, and bring
        // another copy of the sorting code into the wasm.
        let mut rest = shared::FieldErrors::new();
        for (key, why) in fields.iter().filter(|(key, _)| !is_field(key, name)) {
            rest.insert(key.clone(), why.clone());
        }
        if rest.is_empty() {
            return None;
        }
        let mut error = self.clone();
        error.body.error.fields = Some(rest);
        Some(error)
    }

    /// Field errors about fields other than `known`, to show at form level.
    pub fn other_fields(&self, known: &[&str]) -> Vec<(String, String)> {
        self.body
            .error
            .fields
            .iter()
            .flatten()
            .filter(|(key, _)| !known.iter().any(|name| is_field(key, name)))
            .map(|(key, why)| (key.clone(), why.clone()))
            .collect()
    }

    /// The service, or the way to it, is down, as opposed to the request
    /// being refused: the SPA shows its banner and keeps retrying.
    pub fn is_unreachable(&self) -> bool {
        self.status == 0
            || matches!(self.status, 502..=504)
            || self.body.error.code == ErrorCode::Unavailable
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Whether an error key is about field `name`: `paths` covers `paths[3]`
/// and `paths.3`.
fn is_field(key: &str, name: &str) -> bool {
    key.strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('[') || rest.starts_with('.'))
}

/// A GET that always asks the service, so polling sees its current state;
/// the browser still sends the ETag it has (`If-None-Match`), and an
/// unchanged answer comes back as a tiny 304 that fetch turns into the
/// cached 200.
pub fn get(url: &str) -> Result<Request, gloo_net::Error> {
    Request::get(url).cache(RequestCache::NoCache).build()
}

async fn send(request: Result<Request, gloo_net::Error>) -> Result<Response, ApiError> {
    let request = request.map_err(|why| {
        ApiError::new(
            0,
            ErrorCode::BadRequest,
            format!("the request could not be built: {why}"),
        )
    })?;
    let response = request
        .send()
        .await
        .map_err(|_| ApiError::new(0, ErrorCode::Unavailable, "no answer from the service"))?;
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    if status == 401 && !response.url().contains("/api/auth/") {
        to_login();
    }
    // A proxy in front of the service (nginx) answers with HTML, not with
    // the API's error body: make one up from the status.
    Err(match read_json::<ApiErrorBody>(&response).await {
        Ok(body) => ApiError { status, body },
        Err(_) => ApiError::new(
            status,
            ErrorCode::from_status(status),
            format!(
                "the service answered {status} {}",
                response.status_text().trim()
            )
            .trim()
            .to_string(),
        ),
    })
}

/// Off to the login page, which comes back here once logged in: the
/// session ended, or there never was one.
pub fn to_login() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let location = window.location();
    let path = location.pathname().unwrap_or_default();
    if path == "/login" {
        return;
    }
    let here = format!("{path}{}", location.search().unwrap_or_default());
    let _ = location.assign(&format!("/login?next={}", encode(&here)));
}

/// Sends a request and reads its JSON answer.
pub async fn request<T: DeserializeOwned>(
    request: Result<Request, gloo_net::Error>,
) -> Result<T, ApiError> {
    let response = send(request).await?;
    let status = response.status();
    read_json(&response).await.map_err(|why| {
        ApiError::new(
            status,
            ErrorCode::Internal,
            format!("the service's answer could not be read: {why}"),
        )
    })
}

/// The browser parses the JSON; serde only walks the result.
async fn read_json<T: DeserializeOwned>(response: &Response) -> Result<T, String> {
    let text = response.text().await.map_err(|why| why.to_string())?;
    let value = js_sys::JSON::parse(&text).map_err(|_| "not JSON".to_string())?;
    serde_wasm_bindgen::from_value(value).map_err(|why| why.to_string())
}

/// A request with `body` as JSON. The browser writes the JSON; serde only
/// builds the value, as in [`read_json`].
pub fn with_json<T: Serialize>(
    builder: RequestBuilder,
    body: &T,
) -> Result<Request, gloo_net::Error> {
    let value = body
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|why| gloo_net::Error::GlooError(why.to_string()))?;
    let text = js_sys::JSON::stringify(&value)
        .map_err(|_| gloo_net::Error::GlooError("the body could not be written as JSON".into()))?;
    builder
        .header("Content-Type", "application/json")
        .body(String::from(text))
}

/// Sends a request whose answer has no body worth reading (204).
pub async fn request_empty(request: Result<Request, gloo_net::Error>) -> Result<(), ApiError> {
    send(request).await.map(|_| ())
}

/// Escapes one path segment or query value for a URL.
pub fn encode(raw: &str) -> String {
    String::from(js_sys::encode_uri_component(raw))
}
