//! `/api/auth`, `/api/users`, `/api/tokens` and `/api/audit`: logging in
//! and out, accounts, personal API tokens, the audit log. Who may call
//! each is in `http::auth::POLICY`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use shared::{
    ApiErrorBody, ApiToken, AuditPage, AuditQuery, AuthStatus, CreatedToken, Login, Me, NewToken,
    PasswordChange, Setup, User, UserForm,
};

use crate::http::auth::{client_address, session_cookie_header};
use crate::http::blocking::{off_thread, with_db};
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::state::AppState;
use crate::service::identity::{self, Caller};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/auth/status").route(web::get().to(status)))
        .service(web::resource("/api/auth/login").route(web::post().to(login)))
        .service(web::resource("/api/auth/setup").route(web::post().to(setup)))
        .service(web::resource("/api/auth/logout").route(web::post().to(logout)))
        .service(web::resource("/api/auth/me").route(web::get().to(me)))
        .service(web::resource("/api/auth/password").route(web::post().to(change_password)))
        .service(
            web::resource("/api/users")
                .route(web::get().to(list_users))
                .route(web::post().to(create_user)),
        )
        .service(
            web::resource("/api/users/{username}")
                .route(web::put().to(update_user))
                .route(web::delete().to(delete_user)),
        )
        .service(
            web::resource("/api/tokens")
                .route(web::get().to(list_tokens))
                .route(web::post().to(create_token)),
        )
        .service(web::resource("/api/tokens/{id}").route(web::delete().to(delete_token)))
        .service(web::resource("/api/audit").route(web::get().to(audit)));
}

/// Whether accounts are on, and whether the admin still needs its first
/// password (the login page then asks for the setup code).
#[utoipa::path(
    get,
    path = "/api/auth/status",
    tag = "identity",
    security(()),
    responses((status = 200, description = "The login page's facts", body = AuthStatus))
)]
pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.config.auth.enabled {
        return Ok(HttpResponse::Ok().json(AuthStatus {
            auth: false,
            setup_required: false,
        }));
    }
    let setup_required = with_db(&state.pool, |conn| identity::setup_required(conn)).await?;
    Ok(HttpResponse::Ok().json(AuthStatus {
        auth: true,
        setup_required,
    }))
}

fn logged_in(state: &AppState, req: &HttpRequest, session: identity::Session) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(session_cookie_header(state, req, Some(&session.secret)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(session.me)
}

/// Log in: a session cookie (`HttpOnly`, `SameSite=Lax`, `Secure` behind
/// TLS).
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "identity",
    security(()),
    request_body(content = Login, content_type = "application/json"),
    responses(
        (status = 200, description = "Logged in; the session cookie is set", body = Me,
            headers(("Set-Cookie" = String))),
        (status = 400, description = "Not a JSON object of the fields", body = ApiErrorBody),
        (status = 401, description = "Wrong user name or password", body = ApiErrorBody),
        (status = 429, description = "Too many failed logins of this user or address lately", body = ApiErrorBody),
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<Login>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.auth.enabled {
        return Err(ApiError::Conflict(
            "AUTH=off: there is nothing to log in to".into(),
        ));
    }
    let Login { username, password } = body.into_inner();
    let auth = state.config.auth.clone();
    let address = client_address(&req);
    let (login_auth, login_address) = (auth.clone(), address.clone());
    let candidate = with_db(&state.pool, move |conn| {
        identity::login_candidate(conn, &login_auth, &username, &login_address)
    })
    .await?;
    // Argon2 takes its time and memory: without holding a connection.
    let hash = candidate.found.as_ref().and_then(|(_, hash)| hash.clone());
    let password_ok = off_thread(move || {
        Ok(
            password.chars().count() <= shared::identity::MAX_PASSWORD_CHARS
                && identity::password_matches(&password, hash.as_deref()),
        )
    })
    .await?;
    let session = with_db(&state.pool, move |conn| {
        identity::finish_login(conn, &auth, &candidate, password_ok, &address)
    })
    .await?;
    Ok(logged_in(&state, &req, session))
}

/// The admin's first password, with the one-time setup code the service
/// printed in its log; logs the admin in.
#[utoipa::path(
    post,
    path = "/api/auth/setup",
    tag = "identity",
    security(()),
    request_body(content = Setup, content_type = "application/json"),
    responses(
        (status = 400, description = "Not a JSON object of the fields", body = ApiErrorBody),
        (status = 200, description = "The admin's password is set; logged in", body = Me),
        (status = 401, description = "Wrong or used setup code", body = ApiErrorBody),
        (status = 409, description = "The admin has a password already", body = ApiErrorBody),
        (status = 422, description = "The password is too short or too long", body = ApiErrorBody),
        (status = 429, description = "Too many failed attempts lately", body = ApiErrorBody),
    )
)]
pub async fn setup(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<Setup>,
) -> Result<HttpResponse, ApiError> {
    let Setup { code, password } = body.into_inner();
    let auth = state.config.auth.clone();
    let address = client_address(&req);
    let check_auth = auth.clone();
    with_db(&state.pool, move |conn| {
        identity::check_setup_code(conn, &check_auth, &code, &address)
    })
    .await?;
    let hash = off_thread(move || identity::new_password_hash("password", &password)).await?;
    let session = with_db(&state.pool, move |conn| identity::setup(conn, &auth, &hash)).await?;
    Ok(logged_in(&state, &req, session))
}

/// End the caller's session.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "identity",
    responses((status = 204, description = "Logged out; the cookie is cleared"))
)]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    with_db(&state.pool, move |conn| identity::logout(conn, &caller)).await?;
    Ok(HttpResponse::NoContent()
        .insert_header(session_cookie_header(&state, &req, None))
        .finish())
}

/// Who the caller is.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "identity",
    responses((status = 200, description = "The caller", body = Me))
)]
pub async fn me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(caller.me())
}

/// Change one's own password; one's other sessions end.
#[utoipa::path(
    post,
    path = "/api/auth/password",
    tag = "identity",
    request_body(content = PasswordChange, content_type = "application/json"),
    responses(
        (status = 400, description = "Not a JSON object of the fields", body = ApiErrorBody),
        (status = 204, description = "Changed"),
        (status = 422, description = "The current password is wrong, or the new one too short", body = ApiErrorBody),
    )
)]
pub async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let asker = caller.clone();
    let current = with_db(&state.pool, move |conn| {
        identity::password_hash_of(conn, &asker)
    })
    .await?;
    let new_hash = off_thread(move || {
        if !identity::password_matches(&body.current_password, current.as_deref()) {
            return Err(crate::service::ServiceError::field(
                "current_password",
                "is not right",
            ));
        }
        identity::new_password_hash("new_password", &body.new_password)
    })
    .await?;
    with_db(&state.pool, move |conn| {
        identity::change_password(conn, &caller, &new_hash)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every user.
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "identity",
    responses((status = 200, description = "The users, by name", body = Vec<User>))
)]
pub async fn list_users(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let users = with_db(&state.pool, |conn| identity::list_users(conn)).await?;
    Ok(HttpResponse::Ok().json(users))
}

/// Create a user.
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "identity",
    request_body(content = UserForm, content_type = "application/json"),
    responses(
        (status = 400, description = "Not a JSON object of the fields", body = ApiErrorBody),
        (status = 201, description = "The user", body = User),
        (status = 409, description = "The name is taken", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<UserForm>,
) -> Result<HttpResponse, ApiError> {
    let form = body.into_inner();
    let password = form.password.clone();
    let hash = off_thread(move || {
        password
            .map(|p| identity::new_password_hash("password", &p))
            .transpose()
    })
    .await?;
    let user = with_db(&state.pool, move |conn| {
        identity::create_user(conn, &caller, &form, hash)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/users/{}", user.username)))
        .json(user))
}

/// Change a user's role or password (a new password ends its sessions).
#[utoipa::path(
    put,
    path = "/api/users/{username}",
    tag = "identity",
    params(("username" = String, Path, description = "User name")),
    request_body(content = UserForm, content_type = "application/json"),
    responses(
        (status = 400, description = "Not a JSON object of the fields", body = ApiErrorBody),
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No such user", body = ApiErrorBody),
        (status = 409, description = "It would leave no admin", body = ApiErrorBody),
        (status = 422, description = "Invalid values; `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    username: web::Path<String>,
    body: JsonBody<UserForm>,
) -> Result<HttpResponse, ApiError> {
    let (username, form) = (username.into_inner(), body.into_inner());
    let password = form.password.clone();
    let hash = off_thread(move || {
        password
            .map(|p| identity::new_password_hash("password", &p))
            .transpose()
    })
    .await?;
    let user = with_db(&state.pool, move |conn| {
        identity::update_user(conn, &caller, &username, &form, hash)
    })
    .await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Delete a user, with its sessions and tokens.
#[utoipa::path(
    delete,
    path = "/api/users/{username}",
    tag = "identity",
    params(("username" = String, Path, description = "User name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such user", body = ApiErrorBody),
        (status = 409, description = "Oneself, or the last admin", body = ApiErrorBody),
    )
)]
pub async fn delete_user(
    state: web::Data<AppState>,
    caller: Caller,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = username.into_inner();
    with_db(&state.pool, move |conn| {
        identity::delete_user(conn, &caller, &username)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's API tokens, without their secrets.
#[utoipa::path(
    get,
    path = "/api/tokens",
    tag = "identity",
    responses((status = 200, description = "The caller's tokens", body = Vec<ApiToken>))
)]
pub async fn list_tokens(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let tokens = with_db(&state.pool, move |conn| {
        identity::list_tokens(conn, &caller)
    })
    .await?;
    Ok(HttpResponse::Ok().json(tokens))
}

/// A new API token: its secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/tokens",
    tag = "identity",
    request_body(content = NewToken, content_type = "application/json"),
    responses(
        (status = 400, description = "Not a JSON object of the fields", body = ApiErrorBody),
        (status = 201, description = "The token, with its secret (shown once)", body = CreatedToken),
        (status = 422, description = "Invalid values (a role above the caller's); `fields` names each", body = ApiErrorBody),
    )
)]
pub async fn create_token(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<NewToken>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner();
    let created = with_db(&state.pool, move |conn| {
        identity::create_token(conn, &caller, &new)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(created))
}

/// Revoke one of the caller's tokens.
#[utoipa::path(
    delete,
    path = "/api/tokens/{id}",
    tag = "identity",
    params(("id" = i64, Path, description = "Token id")),
    responses(
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such token of the caller's", body = ApiErrorBody),
    )
)]
pub async fn delete_token(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    with_db(&state.pool, move |conn| {
        identity::delete_token(conn, &caller, id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The audit log, newest first.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "identity",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 400, description = "A query parameter is not valid", body = ApiErrorBody),
    )
)]
pub async fn audit(
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = with_db(&state.pool, move |conn| identity::audit_page(conn, &query)).await?;
    Ok(HttpResponse::Ok().json(page))
}
