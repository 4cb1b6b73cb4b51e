//! Logging in and out, one's own tokens and password, and (for admins)
//! the users and the audit log.

use gloo_net::http::Request;
use shared::{
    ApiToken, AuditPage, AuthStatus, CreatedToken, Login, Me, NewToken, PasswordChange, Setup,
    User, UserForm,
};

use super::{encode, get, request, request_empty, with_json, ApiError};

pub async fn status() -> Result<AuthStatus, ApiError> {
    request(get("/api/auth/status")).await
}

pub async fn me() -> Result<Me, ApiError> {
    request(get("/api/auth/me")).await
}

pub async fn login(login: &Login) -> Result<Me, ApiError> {
    request(with_json(Request::post("/api/auth/login"), login)).await
}

pub async fn setup(setup: &Setup) -> Result<Me, ApiError> {
    request(with_json(Request::post("/api/auth/setup"), setup)).await
}

pub async fn logout() -> Result<(), ApiError> {
    request_empty(Request::post("/api/auth/logout").build()).await
}

pub async fn change_password(change: &PasswordChange) -> Result<(), ApiError> {
    request_empty(with_json(Request::post("/api/auth/password"), change)).await
}

pub async fn tokens() -> Result<Vec<ApiToken>, ApiError> {
    request(get("/api/tokens")).await
}

pub async fn create_token(new: &NewToken) -> Result<CreatedToken, ApiError> {
    request(with_json(Request::post("/api/tokens"), new)).await
}

pub async fn delete_token(id: i64) -> Result<(), ApiError> {
    request_empty(Request::delete(&format!("/api/tokens/{id}")).build()).await
}

pub async fn users() -> Result<Vec<User>, ApiError> {
    request(get("/api/users")).await
}

pub async fn create_user(form: &UserForm) -> Result<User, ApiError> {
    request(with_json(Request::post("/api/users"), form)).await
}

pub async fn update_user(username: &str, form: &UserForm) -> Result<User, ApiError> {
    let url = format!("/api/users/{}", encode(username));
    request(with_json(Request::put(&url), form)).await
}

pub async fn delete_user(username: &str) -> Result<(), ApiError> {
    let url = format!("/api/users/{}", encode(username));
    request_empty(Request::delete(&url).build()).await
}

/// A page of the audit log, of one actor and one action (or family) if
/// given.
pub async fn audit(actor: &str, action: &str, page: i64) -> Result<AuditPage, ApiError> {
    let mut url = format!("/api/audit?page={page}&per_page=50");
    if !actor.trim().is_empty() {
        url.push_str(&format!("&actor={}", encode(actor.trim())));
    }
    if !action.trim().is_empty() {
        url.push_str(&format!("&action={}", encode(action.trim())));
    }
    request(get(&url)).await
}
