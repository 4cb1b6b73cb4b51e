//! Accounts, roles, API tokens and the audit log: the bodies of the
//! identity endpoints and the rules both sides apply to them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::input::{query_text, query_value};

/// What a caller may do. Ordered: each role may do all that the ones
/// before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Also starts runs, cancels and re-runs its own, uploads tests,
    /// reserves environments.
    Member,
    /// Everything: environments, users, other people's runs, the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Member, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == raw)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /api/auth/me`, and the answer of a login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub username: String,
    pub role: Role,
}

/// `GET /api/auth/status`: what the login page needs to know before anyone
/// logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthStatus {
    /// False with `AUTH=off`: no accounts, everyone is an admin.
    pub auth: bool,
    /// The admin has no password yet: the login page asks for the setup
    /// code the service printed in its log.
    pub setup_required: bool,
}

/// Body of `POST /api/auth/login`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// Body of `POST /api/auth/setup`: the one-time code from the log, and the
/// admin's first password.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Setup {
    pub code: String,
    pub password: String,
}

/// Body of `POST /api/auth/password`: the caller's own password change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// A user, as `GET /api/users` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub username: String,
    pub role: Role,
    /// Whether the user can log in with a password (SSO users cannot).
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
}

/// Body of `POST /api/users`, and of `PUT /api/users/{username}` (where
/// `username`, if given, must repeat the path's and every field may be
/// left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserForm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// At least 8 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A personal API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Body of `POST /api/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewToken {
    /// 1 to 64 characters.
    pub name: String,
    /// At most the caller's role; the caller's role if left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// 1 to 3650; never expires if left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<i64>,
}

/// The answer of `POST /api/tokens`: the token and, this once, its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: ApiToken,
    /// Send as `Authorization: Bearer <token>`. Shown only now.
    pub token: String,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// Who did it (for a failed login: the user name that was tried).
    pub actor: String,
    /// `run.create`, `environment.update`, `auth.login_failed`, …
    pub action: String,
    /// What it was done to: `run 42`, `environment 7`, `user bob`, …
    pub target: String,
    pub detail: String,
}

/// `GET /api/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// Query of `GET /api/audit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AuditQuery {
    /// Only entries of this actor (exact).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_text"
    )]
    pub actor: Option<String>,
    /// Only this action (`run.create`), or a family of them (`run`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_text"
    )]
    pub action: Option<String>,
    /// Page number, from 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_value"
    )]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000000))]
    pub page: Option<i64>,
    /// Entries per page, 50 unless given.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_value"
    )]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 500))]
    pub per_page: Option<i64>,
}

impl AuditQuery {
    /// The page and its size, defaults applied and ranges checked.
    pub fn page_and_size(&self) -> Result<(i64, i64), String> {
        crate::run::page_and_size(self.page, self.per_page)
    }
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest: hashing is slow on purpose, and must stay bounded.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// An account name: 1 to 64 of letters, digits and `._@-` (an e-mail
/// address from a single sign-on proxy fits).
pub fn account_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > 64 {
        return Err("must be at most 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
    {
        return Err("may only contain letters, digits and . _ @ -".into());
    }
    Ok(name.to_string())
}

pub fn password(raw: &str) -> Result<(), String> {
    let chars = raw.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
    }
    Ok(())
}

pub fn token_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > 64 {
        return Err("must be at most 64 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_what_they_allow() {
        assert!(Role::Viewer < Role::Member && Role::Member < Role::Admin);
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn account_names_fit_logins_and_e_mail_addresses() {
        assert_eq!(account_name(" alice ").as_deref(), Ok("alice"));
        assert!(account_name("bob@example.com").is_ok());
        assert!(account_name("").is_err());
        assert!(account_name("a b").is_err());
        assert!(account_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn passwords_have_a_length_range() {
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
        assert!(password(&"p".repeat(257)).is_err());
    }
}
