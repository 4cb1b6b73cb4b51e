//! Identity at the edge: the one place that decides who the caller is
//! (API token, login session, trusted single sign-on proxy) and whether
//! its role allows the endpoint. [`POLICY`] is the whole table of what
//! each endpoint needs; handlers receive a [`Caller`], never a header.
//! Rules that depend on the thing acted on (one's own run, one's own
//! reservation) are the use cases' own.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, ResponseError};
use shared::Role;
use std::future::{ready, Ready};

use super::error::ApiError;
use super::state::AppState;
use crate::config::AuthSettings;
use crate::service::identity::{self, Caller};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "te_session";

/// The name a caller gets with `AUTH=off`.
pub const LOCAL_USER: &str = "local";

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// A caller of at least this role.
    Role(Role),
}

/// Which methods a rule covers: reads are GET and HEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Methods {
    Read,
    Post,
    Put,
    Delete,
    Any,
}

/// One line of the policy: methods, a path pattern (`*` is one segment,
/// a trailing `**` any rest), and the access it needs.
pub struct Rule(pub Methods, pub &'static str, pub Access);

use Access::{Public, Role as Needs};
use Methods::{Any, Delete, Post, Put, Read};

/// Every endpoint's access, first match wins. Whatever no line names
/// needs a viewer to read and an admin to change.
pub const POLICY: &[Rule] = &[
    Rule(Read, "/api/health", Public),
    Rule(Read, "/api/openapi.json", Public),
    Rule(Read, "/api/auth/status", Public),
    Rule(Post, "/api/auth/login", Public),
    Rule(Post, "/api/auth/setup", Public),
    // One's own session, password and tokens (a token's role is capped
    // by its owner's).
    Rule(Any, "/api/auth/**", Needs(Role::Viewer)),
    Rule(Any, "/api/tokens/**", Needs(Role::Viewer)),
    Rule(Any, "/api/users/**", Needs(Role::Admin)),
    Rule(Read, "/api/audit", Needs(Role::Admin)),
    // Members run tests; cancelling or re-running another's run is for
    // admins (checked against the run's owner).
    Rule(Post, "/api/runs", Needs(Role::Member)),
    Rule(Post, "/api/runs/*/cancel", Needs(Role::Member)),
    Rule(Post, "/api/runs/*/rerun", Needs(Role::Member)),
    Rule(Post, "/api/run-groups", Needs(Role::Member)),
    Rule(Post, "/api/run-groups/*/cancel", Needs(Role::Member)),
    Rule(Post, "/api/tests", Needs(Role::Member)),
    // Reservations: members reserve; ending or extending another's is for
    // admins (checked against the owner).
    Rule(
        Post,
        "/api/environments/*/reservations",
        Needs(Role::Member),
    ),
    Rule(Post, "/api/reservations/*/extend", Needs(Role::Member)),
    Rule(Delete, "/api/reservations/*", Needs(Role::Member)),
    // Webhook URLs may hold a receiver's secret (Slack's do); schedules
    // and webhooks act for the whole team.
    Rule(Any, "/api/webhooks/**", Needs(Role::Admin)),
    Rule(Read, "/metrics", Needs(Role::Viewer)),
    Rule(Read, "/api/**", Needs(Role::Viewer)),
    // Environments, maintenance, deleting tests, and anything else.
    Rule(Put, "/api/**", Needs(Role::Admin)),
    Rule(Any, "/api/**", Needs(Role::Admin)),
];

fn methods_match(methods: Methods, method: &Method) -> bool {
    match methods {
        Read => *method == Method::GET || *method == Method::HEAD,
        Post => *method == Method::POST,
        Put => *method == Method::PUT,
        Delete => *method == Method::DELETE,
        Any => true,
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    let mut pattern = pattern.split('/');
    let mut path = path.split('/');
    loop {
        match (pattern.next(), path.next()) {
            (Some("**"), _) => return true,
            (Some("*"), Some(segment)) if !segment.is_empty() => {}
            (Some(expected), Some(segment)) if expected == segment => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// What `method path` needs; `None` for paths outside the API (the SPA's
/// files, served by nginx or not at all).
pub fn access(method: &Method, path: &str) -> Option<Access> {
    if !(path == "/api" || path.starts_with("/api/") || path == "/metrics") {
        return None;
    }
    // `/api/runs/**` also matches `/api/runs` itself.
    let rule = POLICY.iter().find(|Rule(methods, pattern, _)| {
        methods_match(*methods, method)
            && (path_matches(pattern, path)
                || pattern.strip_suffix("/**").is_some_and(|base| base == path))
    });
    Some(rule.map_or(Access::Role(Role::Admin), |rule| rule.2))
}

/// The value of the session cookie, if the request has one.
fn session_cookie(req: &ServiceRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// What a request says of its caller, read before any database work.
enum Credentials {
    Bearer(String),
    Proxy(String),
    Session(String),
    None,
}

fn credentials(auth: &AuthSettings, req: &ServiceRequest) -> Result<Credentials, ApiError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or("");
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        return Ok(Credentials::Bearer(token.to_string()));
    }
    if let Some(name) = &auth.proxy_header {
        let trusted = req
            .peer_addr()
            .is_some_and(|peer| auth.proxy_addrs.iter().any(|net| net.contains(peer.ip())));
        let given = req
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        match (given, trusted) {
            (Some(user), true) => return Ok(Credentials::Proxy(user.to_string())),
            (Some(_), false) => tracing::warn!(
                peer = ?req.peer_addr(), header = %name,
                "ignored a single sign-on header from an address not in AUTH_PROXY_ADDRS"
            ),
            _ => {}
        }
    }
    Ok(session_cookie(req).map_or(Credentials::None, Credentials::Session))
}

/// Who the request comes from; `None` without credentials.
async fn identify(state: &AppState, req: &ServiceRequest) -> Result<Option<Caller>, ApiError> {
    let auth = &state.config.auth;
    if !auth.enabled {
        return Ok(Some(Caller::new(LOCAL_USER, Role::Admin)));
    }
    let credentials = credentials(auth, req)?;
    // The automation token needs no database.
    if let (Credentials::Bearer(secret), Some(admin)) = (&credentials, &auth.admin_token) {
        if identity::secrets_equal(admin.expose(), secret) {
            return Ok(Some(Caller::new(identity::ADMIN, Role::Admin)));
        }
    }
    let auth = auth.clone();
    let found = match credentials {
        Credentials::None => return Ok(None),
        Credentials::Bearer(secret) => {
            let caller = super::blocking::with_db(&state.pool, move |conn| {
                identity::caller_of_token(conn, &auth, &secret)
            })
            .await?;
            return caller.map(Some).ok_or_else(|| {
                ApiError::Unauthorized("the token is not valid (wrong, expired or revoked)".into())
            });
        }
        Credentials::Proxy(name) => Some(
            super::blocking::with_db(&state.pool, move |conn| {
                identity::caller_of_proxy(conn, &auth, &name)
            })
            .await?,
        ),
        Credentials::Session(secret) => {
            super::blocking::with_db(&state.pool, move |conn| {
                identity::caller_of_session(conn, &secret)
            })
            .await?
        }
    };
    Ok(found)
}

/// The guard in front of every route: refuses with 401 or 403 what
/// [`POLICY`] does not allow, and hands the [`Caller`] on.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(needs) = access(req.method(), req.path()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let verdict = match identify(&state, &req).await {
        Ok(caller) => decide(needs, caller),
        Err(refused) => Err(refused),
    };
    match verdict {
        Ok(caller) => {
            if let Some(caller) = caller {
                req.extensions_mut().insert(caller);
            }
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(refused) => {
            let response = refused.error_response();
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// Whether `caller` may use an endpoint that `needs` this.
fn decide(needs: Access, caller: Option<Caller>) -> Result<Option<Caller>, ApiError> {
    match (needs, caller) {
        (Access::Public, caller) => Ok(caller),
        (Access::Role(_), None) => Err(ApiError::Unauthorized(
            "log in, or send an API token as `Authorization: Bearer <token>`".into(),
        )),
        (Access::Role(role), Some(caller)) if caller.role >= role => Ok(Some(caller)),
        (Access::Role(role), Some(caller)) => Err(ApiError::Forbidden(format!(
            "this needs the {role} role; {} is a {}",
            caller.username, caller.role
        ))),
    }
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Ready<Result<Caller, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .ok_or_else(|| ApiError::Unauthorized("no credentials".into()).into()),
        )
    }
}

/// The session cookie for a new login, or (without a secret) the one that
/// ends it.
pub fn session_cookie_header(
    state: &AppState,
    req: &HttpRequest,
    secret: Option<&str>,
) -> (header::HeaderName, String) {
    let secure =
        state.config.browser.public_is_https() || req.connection_info().scheme() == "https";
    let (value, max_age) = match secret {
        Some(secret) => (secret, state.config.auth.session_hours * 3600),
        None => ("", 0),
    };
    let mut cookie =
        format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}");
    if secure {
        cookie.push_str("; Secure");
    }
    (header::SET_COOKIE, cookie)
}

/// The client's address, for the rate limit of logins.
pub fn client_address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "unknown".to_string(), |peer| peer.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(method: Method, path: &str) -> Option<Access> {
        access(&method, path)
    }

    #[test]
    fn the_policy_gives_each_endpoint_class_its_role() {
        let viewer = Some(Access::Role(Role::Viewer));
        let member = Some(Access::Role(Role::Member));
        let admin = Some(Access::Role(Role::Admin));
        assert_eq!(needs(Method::GET, "/api/health"), Some(Access::Public));
        assert_eq!(needs(Method::POST, "/api/auth/login"), Some(Access::Public));
        assert_eq!(needs(Method::GET, "/api/auth/me"), viewer);
        assert_eq!(needs(Method::GET, "/api/runs"), viewer);
        assert_eq!(needs(Method::HEAD, "/api/runs/3"), viewer);
        assert_eq!(needs(Method::POST, "/api/runs"), member);
        assert_eq!(needs(Method::POST, "/api/runs/3/cancel"), member);
        assert_eq!(needs(Method::POST, "/api/tests"), member);
        assert_eq!(needs(Method::DELETE, "/api/tests/a/test_x.py"), admin);
        assert_eq!(needs(Method::POST, "/api/environments"), admin);
        assert_eq!(needs(Method::PUT, "/api/environments/3"), admin);
        assert_eq!(
            needs(Method::POST, "/api/environments/3/reservations"),
            member
        );
        assert_eq!(
            needs(Method::POST, "/api/environments/3/maintenance"),
            admin
        );
        assert_eq!(needs(Method::GET, "/api/users"), admin);
        assert_eq!(needs(Method::DELETE, "/api/users/bob"), admin);
        assert_eq!(needs(Method::POST, "/api/tokens"), viewer);
        assert_eq!(needs(Method::GET, "/api/tokens"), viewer);
        assert_eq!(needs(Method::GET, "/api/audit"), admin);
        assert_eq!(needs(Method::GET, "/metrics"), viewer);
        assert_eq!(needs(Method::GET, "/index.html"), None);
        assert_eq!(needs(Method::POST, "/api/unknown"), admin);
    }

    #[test]
    fn one_star_is_one_segment() {
        assert!(path_matches("/api/runs/*/cancel", "/api/runs/7/cancel"));
        assert!(!path_matches("/api/runs/*/cancel", "/api/runs//cancel"));
        assert!(!path_matches("/api/runs/*/cancel", "/api/runs/7/8/cancel"));
        assert!(!path_matches("/api/runs", "/api/runs/7"));
    }

    #[test]
    fn roles_below_the_need_are_forbidden_and_no_caller_unauthorized() {
        let member = Caller::new("m", Role::Member);
        assert!(decide(Access::Role(Role::Member), Some(member.clone())).is_ok());
        assert!(matches!(
            decide(Access::Role(Role::Admin), Some(member)),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            decide(Access::Role(Role::Viewer), None),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(decide(Access::Public, None), Ok(None)));
    }
}
