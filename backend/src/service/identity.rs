//! Who the caller is and what it may do: accounts and their passwords
//! (Argon2id), login sessions, personal API tokens, the admin's first
//! start, and the audit log every state change writes to.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use diesel::prelude::*;
use shared::identity::{account_name, password as check_password, token_name};
use shared::{ApiToken, AuditPage, AuditQuery, CreatedToken, Me, NewToken, Role, User, UserForm};
use std::sync::OnceLock;

use super::ServiceError;
use crate::config::AuthSettings;
use crate::db;
use crate::db::identity::{TokenRow, UserRow};

/// The account every service has: the first admin.
pub const ADMIN: &str = "admin";

/// Who makes a request, as the edge decided it: handlers and use cases
/// receive this, never a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub username: String,
    pub role: Role,
    /// The API token the request carried, if one of the database's.
    pub token_id: Option<i64>,
    /// The session the request carried, as its hash (for logout).
    pub session: Option<String>,
}

impl Caller {
    pub fn new(username: impl Into<String>, role: Role) -> Caller {
        Caller {
            username: username.into(),
            role,
            token_id: None,
            session: None,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may act on something of `owner`'s: its own, or
    /// anything for an admin.
    pub fn may_act_for(&self, owner: &str) -> bool {
        self.is_admin() || self.username == owner
    }

    pub fn me(&self) -> Me {
        Me {
            username: self.username.clone(),
            role: self.role,
        }
    }
}

/// The user name of a run or run group: the caller's. Left out, it is
/// filled in; given, it must be the caller's own (with accounts off, any
/// name goes, as there is no one to check it against). A name that is not
/// valid at all is left for the body's own checks to name.
pub fn claim_username(
    caller: &Caller,
    accounts: bool,
    given: &mut shared::Input<String>,
) -> Result<(), ServiceError> {
    match given {
        shared::Input::Missing => *given = shared::Input::Given(caller.username.clone()),
        shared::Input::Given(name) if accounts => {
            if let Ok(name) = shared::validate::username(name) {
                if name != caller.username {
                    return Err(ServiceError::field(
                        "username",
                        format!(
                            "must be your own user name ({}), or be left out",
                            caller.username
                        ),
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The user a schedule's runs belong to: the caller's name when left out
/// or null; given, the same rule as a run's user name.
pub fn claim_schedule_username(
    caller: &Caller,
    accounts: bool,
    given: &mut shared::Input<Option<String>>,
) -> Result<(), ServiceError> {
    let mut name = match std::mem::take(given) {
        shared::Input::Missing | shared::Input::Given(None) => shared::Input::Missing,
        shared::Input::Given(Some(name)) => shared::Input::Given(name),
        shared::Input::Wrong(why) => {
            *given = shared::Input::Wrong(why);
            return Ok(());
        }
    };
    claim_username(caller, accounts, &mut name)?;
    if let shared::Input::Given(name) = name {
        *given = shared::Input::Given(Some(name));
    }
    Ok(())
}

pub use crate::secrets::{new_secret, secret_hash, secrets_equal};

pub fn hash_password(password: &str) -> Result<String, ServiceError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)
        .map_err(|e| ServiceError::internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(ServiceError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(ServiceError::internal)
}

/// Whether `password` matches `hash`. Without a hash (no such user, or
/// one without a password) a dummy is checked, so that the answer takes
/// as long either way.
pub fn password_matches(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a password at all").unwrap_or_default());
    let (hash, real) = match hash {
        Some(hash) => (hash, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && real
}

fn role_of(raw: &str) -> Role {
    // The column's CHECK allows nothing else; a stray value reads as least.
    Role::parse(raw).unwrap_or(Role::Viewer)
}

fn user(row: UserRow) -> User {
    User {
        role: role_of(&row.role),
        has_password: row.password_hash.is_some(),
        username: row.username,
        created_at: row.created_at,
    }
}

fn token(row: TokenRow) -> ApiToken {
    ApiToken {
        id: row.id,
        name: row.name,
        role: role_of(&row.role),
        created_at: row.created_at,
        expires_at: row.expires_at,
    }
}

/// Writes an audit entry.
pub fn audit(
    conn: &mut PgConnection,
    actor: &Caller,
    action: &str,
    target: impl AsRef<str>,
    detail: impl AsRef<str>,
) -> Result<(), ServiceError> {
    db::audit::insert(
        conn,
        &actor.username,
        action,
        target.as_ref(),
        detail.as_ref(),
        None,
    )?;
    Ok(())
}

pub fn audit_page(conn: &mut PgConnection, query: &AuditQuery) -> Result<AuditPage, ServiceError> {
    let (page, per_page) = query.page_and_size().map_err(ServiceError::BadRequest)?;
    let (items, total) = db::audit::page(
        conn,
        query.actor.as_deref(),
        query.action.as_deref(),
        page,
        per_page,
    )?;
    Ok(AuditPage {
        items,
        total,
        page,
        per_page,
    })
}

/// What start-up prints for the admin, if anything: the one-time setup
/// code when the admin has no password and none was given.
pub fn bootstrap(
    conn: &mut PgConnection,
    auth: &AuthSettings,
) -> Result<Option<String>, ServiceError> {
    db::identity::insert_user(conn, ADMIN, Role::Admin.as_str(), None)?;
    if let Some(password) = &auth.admin_password {
        let hash = hash_password(password.expose())?;
        if db::identity::set_first_password(conn, ADMIN, &hash)? == 1 {
            db::identity::delete_setup_code(conn, ADMIN)?;
            tracing::info!("the admin's password was set from ADMIN_PASSWORD");
        }
    }
    db::identity::delete_expired_sessions(conn)?;
    let admin = db::identity::user(conn, ADMIN)?;
    if admin.is_some_and(|admin| admin.password_hash.is_none()) {
        // Short enough to type, long enough not to guess within the rate
        // limit of logins.
        let code = new_secret().map_err(ServiceError::Internal)?[..16].to_string();
        db::identity::put_setup_code(conn, ADMIN, &secret_hash(&code))?;
        return Ok(Some(code));
    }
    Ok(None)
}

/// Whether the admin still waits for its first password.
pub fn setup_required(conn: &mut PgConnection) -> Result<bool, ServiceError> {
    Ok(db::identity::setup_code(conn, ADMIN)?.is_some()
        && db::identity::user(conn, ADMIN)?.is_some_and(|admin| admin.password_hash.is_none()))
}

/// A failed login, or a refused one: written to the audit log, which is
/// also what the rate limit counts.
fn login_failed(
    conn: &mut PgConnection,
    username: &str,
    address: &str,
    why: &str,
) -> Result<(), ServiceError> {
    db::audit::insert(
        conn,
        username,
        "auth.login_failed",
        &format!("user {username}"),
        why,
        Some(address),
    )?;
    Ok(())
}

/// Refuses a login attempt when its user name or address failed too often
/// lately.
fn rate_limit(
    conn: &mut PgConnection,
    auth: &AuthSettings,
    username: &str,
    address: &str,
) -> Result<(), ServiceError> {
    let (of_user, of_address) =
        db::audit::recent_login_failures(conn, username, address, auth.login_window_secs)?;
    if of_user >= auth.login_max_failures_per_user
        || of_address >= auth.login_max_failures_per_address
    {
        return Err(ServiceError::TooMany(format!(
            "too many failed logins; try again in {} minutes",
            (auth.login_window_secs + 59) / 60
        )));
    }
    Ok(())
}

/// A new session: the secret for the cookie, and the user.
pub struct Session {
    pub secret: String,
    pub me: Me,
}

/// What a login attempt is checked against: the user, its role and
/// password hash, if it exists. Refuses at once when the user name or the
/// address failed too often lately. Hashing is slow: the caller checks the
/// password with [`password_matches`] without holding a connection.
pub struct LoginCandidate {
    pub username: String,
    pub found: Option<(String, Option<String>)>,
}

pub fn login_candidate(
    conn: &mut PgConnection,
    auth: &AuthSettings,
    username: &str,
    address: &str,
) -> Result<LoginCandidate, ServiceError> {
    let username = username.trim();
    if username.is_empty() || username.chars().count() > 64 {
        return Err(wrong_login());
    }
    rate_limit(conn, auth, username, address)?;
    let found = db::identity::user(conn, username)?.map(|u| (u.role, u.password_hash));
    Ok(LoginCandidate {
        username: username.to_string(),
        found,
    })
}

fn wrong_login() -> ServiceError {
    ServiceError::Unauthorized("wrong user name or password".into())
}

/// Ends a login attempt whose password was checked: a session, or the
/// failure written down (and counted by the rate limit).
pub fn finish_login(
    conn: &mut PgConnection,
    auth: &AuthSettings,
    candidate: &LoginCandidate,
    password_ok: bool,
    address: &str,
) -> Result<Session, ServiceError> {
    match (&candidate.found, password_ok) {
        (Some((role, _)), true) => start_session(conn, auth, &candidate.username, role_of(role)),
        _ => {
            login_failed(
                conn,
                &candidate.username,
                address,
                "wrong user name or password",
            )?;
            Err(wrong_login())
        }
    }
}

/// Checks a new password's length and hashes it (slowly: call it off the
/// async threads and without a connection).
pub fn new_password_hash(field: &str, password: &str) -> Result<String, ServiceError> {
    check_password(password).map_err(|why| ServiceError::field(field, why))?;
    hash_password(password)
}

fn start_session(
    conn: &mut PgConnection,
    auth: &AuthSettings,
    username: &str,
    role: Role,
) -> Result<Session, ServiceError> {
    let secret = new_secret().map_err(ServiceError::Internal)?;
    db::identity::insert_session(conn, &secret_hash(&secret), username, auth.session_hours)?;
    db::audit::insert(
        conn,
        username,
        "auth.login",
        &format!("user {username}"),
        "",
        None,
    )?;
    Ok(Session {
        secret,
        me: Me {
            username: username.to_string(),
            role,
        },
    })
}

/// Whether `code` is the admin's live setup code; a wrong one counts as a
/// failed login of the admin.
pub fn check_setup_code(
    conn: &mut PgConnection,
    auth: &AuthSettings,
    code: &str,
    address: &str,
) -> Result<(), ServiceError> {
    rate_limit(conn, auth, ADMIN, address)?;
    let stored = db::identity::setup_code(conn, ADMIN)?;
    let valid = stored
        .as_deref()
        .is_some_and(|stored| secrets_equal(stored, &secret_hash(code.trim())));
    if !valid {
        login_failed(conn, ADMIN, address, "wrong setup code")?;
        return Err(ServiceError::Unauthorized(
            "wrong or used setup code; see the service log".into(),
        ));
    }
    Ok(())
}

/// The admin's first password (hashed by [`new_password_hash`]), once its
/// setup code was checked; logs in.
pub fn setup(
    conn: &mut PgConnection,
    auth: &AuthSettings,
    password_hash: &str,
) -> Result<Session, ServiceError> {
    conn.transaction(|conn| {
        if db::identity::set_first_password(conn, ADMIN, password_hash)? != 1 {
            return Err(ServiceError::Conflict(
                "the admin has a password already".into(),
            ));
        }
        db::identity::delete_setup_code(conn, ADMIN)?;
        Ok(())
    })?;
    let admin = Caller::new(ADMIN, Role::Admin);
    audit(
        conn,
        &admin,
        "user.password",
        format!("user {ADMIN}"),
        "set with the setup code",
    )?;
    start_session(conn, auth, ADMIN, Role::Admin)
}

pub fn logout(conn: &mut PgConnection, caller: &Caller) -> Result<(), ServiceError> {
    if let Some(session) = &caller.session {
        db::identity::delete_session(conn, session)?;
    }
    Ok(())
}

/// The caller's password hash, for [`change_password`]'s check.
pub fn password_hash_of(
    conn: &mut PgConnection,
    caller: &Caller,
) -> Result<Option<String>, ServiceError> {
    Ok(db::identity::user(conn, &caller.username)?.and_then(|u| u.password_hash))
}

/// The caller's own password change, once the current one was found right
/// and the new one hashed: every other session of the caller ends.
pub fn change_password(
    conn: &mut PgConnection,
    caller: &Caller,
    new_hash: &str,
) -> Result<(), ServiceError> {
    db::identity::set_password(conn, &caller.username, new_hash)?;
    db::identity::delete_sessions_of(conn, &caller.username, caller.session.as_deref())?;
    audit(
        conn,
        caller,
        "user.password",
        format!("user {}", caller.username),
        "",
    )?;
    Ok(())
}

/// The user a bearer token stands for, or `None` if it is no live token.
/// `ADMIN_TOKEN` is compared in constant time; the others are looked up by
/// their hash, and their role is the lower of the token's and its owner's.
pub fn caller_of_token(
    conn: &mut PgConnection,
    auth: &AuthSettings,
    secret: &str,
) -> Result<Option<Caller>, ServiceError> {
    if let Some(admin) = &auth.admin_token {
        if secrets_equal(admin.expose(), secret) {
            return Ok(Some(Caller::new(ADMIN, Role::Admin)));
        }
    }
    let hash = secret_hash(secret);
    let Some((row, stored, owner_role)) = db::identity::token_by_hash(conn, &hash)? else {
        return Ok(None);
    };
    if !secrets_equal(&stored, &hash) {
        return Ok(None);
    }
    Ok(Some(Caller {
        role: role_of(&row.role).min(role_of(&owner_role)),
        username: row.username,
        token_id: Some(row.id),
        session: None,
    }))
}

pub fn caller_of_session(
    conn: &mut PgConnection,
    secret: &str,
) -> Result<Option<Caller>, ServiceError> {
    let hash = secret_hash(secret);
    Ok(
        db::identity::session_user(conn, &hash)?.map(|(username, role)| Caller {
            username,
            role: role_of(&role),
            token_id: None,
            session: Some(hash),
        }),
    )
}

/// The user a trusted single sign-on proxy names, created with the
/// default role the first time it is seen.
pub fn caller_of_proxy(
    conn: &mut PgConnection,
    auth: &AuthSettings,
    raw_name: &str,
) -> Result<Caller, ServiceError> {
    let username = account_name(raw_name)
        .map_err(|why| ServiceError::Unauthorized(format!("the proxy's user name {why}")))?;
    if let Some(found) = db::identity::user(conn, &username)? {
        return Ok(Caller::new(found.username, role_of(&found.role)));
    }
    let role = auth.proxy_default_role;
    if db::identity::insert_user(conn, &username, role.as_str(), None)? {
        let proxy = Caller::new("proxy", Role::Admin);
        audit(
            conn,
            &proxy,
            "user.create",
            format!("user {username}"),
            format!("role {role}, first seen through the single sign-on proxy"),
        )?;
        tracing::info!(%username, %role, "user created on first sight through the proxy");
    }
    let found = db::identity::user(conn, &username)?
        .ok_or_else(|| ServiceError::internal("a user created just now is gone"))?;
    Ok(Caller::new(found.username, role_of(&found.role)))
}

pub fn list_users(conn: &mut PgConnection) -> Result<Vec<User>, ServiceError> {
    Ok(db::identity::list_users(conn)?
        .into_iter()
        .map(user)
        .collect())
}

pub fn create_user(
    conn: &mut PgConnection,
    caller: &Caller,
    form: &UserForm,
    hash: Option<String>,
) -> Result<User, ServiceError> {
    let mut fields = shared::validate::Fields::default();
    let username = fields.check(
        "username",
        form.username
            .as_deref()
            .ok_or_else(|| "is required".to_string())
            .and_then(account_name),
    );
    let role = fields.check("role", form.role.ok_or_else(|| "is required".to_string()));
    let (Some(username), Some(role)) = (username, role) else {
        return Err(ServiceError::invalid(fields.into_inner()));
    };
    if !db::identity::insert_user(conn, &username, role.as_str(), hash.as_deref())? {
        return Err(ServiceError::Conflict(format!(
            "user {username} exists already"
        )));
    }
    audit(
        conn,
        caller,
        "user.create",
        format!("user {username}"),
        format!("role {role}"),
    )?;
    let created = db::identity::user(conn, &username)?
        .ok_or_else(|| ServiceError::internal("a user created just now is gone"))?;
    Ok(user(created))
}

fn missing_user(username: &str) -> ServiceError {
    ServiceError::NotFound(format!("no user {username}"))
}

/// Changes a user's role or password. A new password ends the user's
/// sessions; a role change takes effect at its next request.
pub fn update_user(
    conn: &mut PgConnection,
    caller: &Caller,
    username: &str,
    form: &UserForm,
    hash: Option<String>,
) -> Result<User, ServiceError> {
    if form
        .username
        .as_deref()
        .is_some_and(|given| given.trim() != username)
    {
        return Err(ServiceError::field("username", "cannot be changed"));
    }
    conn.transaction(|conn| {
        let found = db::identity::user(conn, username)?.ok_or_else(|| missing_user(username))?;
        let mut changes = Vec::new();
        if let Some(role) = form.role {
            if role != Role::Admin
                && found.role == "admin"
                && db::identity::count_admins(conn)? <= 1
            {
                return Err(ServiceError::Conflict(format!(
                    "{username} is the last admin; make another user an admin first"
                )));
            }
            db::identity::set_role(conn, username, role.as_str())?;
            changes.push(format!("role {role}"));
        }
        if let Some(hash) = &hash {
            db::identity::set_password(conn, username, hash)?;
            db::identity::delete_sessions_of(conn, username, None)?;
            changes.push("password".to_string());
        }
        audit(
            conn,
            caller,
            "user.update",
            format!("user {username}"),
            changes.join(", "),
        )?;
        let updated = db::identity::user(conn, username)?.ok_or_else(|| missing_user(username))?;
        Ok(user(updated))
    })
}

pub fn delete_user(
    conn: &mut PgConnection,
    caller: &Caller,
    username: &str,
) -> Result<(), ServiceError> {
    if username == caller.username {
        return Err(ServiceError::Conflict("you cannot delete yourself".into()));
    }
    conn.transaction(|conn| {
        let found = db::identity::user(conn, username)?.ok_or_else(|| missing_user(username))?;
        if found.role == "admin" && db::identity::count_admins(conn)? <= 1 {
            return Err(ServiceError::Conflict(format!(
                "{username} is the last admin"
            )));
        }
        db::identity::delete_user(conn, username)?;
        audit(conn, caller, "user.delete", format!("user {username}"), "")
    })
}

pub fn list_tokens(
    conn: &mut PgConnection,
    caller: &Caller,
) -> Result<Vec<ApiToken>, ServiceError> {
    Ok(db::identity::tokens_of(conn, &caller.username)?
        .into_iter()
        .map(token)
        .collect())
}

/// A new token of the caller's: its role at most the caller's.
pub fn create_token(
    conn: &mut PgConnection,
    caller: &Caller,
    new: &NewToken,
) -> Result<CreatedToken, ServiceError> {
    let mut fields = shared::validate::Fields::default();
    let name = fields.check("name", token_name(&new.name));
    let role = new.role.unwrap_or(caller.role);
    if role > caller.role {
        fields.add(
            "role",
            format!("must be at most your own role ({})", caller.role),
        );
    }
    if let Some(days) = new.expires_in_days {
        if !(1..=3650).contains(&days) {
            fields.add("expires_in_days", "must be from 1 to 3650");
        }
    }
    let Some(name) = name.filter(|_| fields.is_empty()) else {
        return Err(ServiceError::invalid(fields.into_inner()));
    };
    if db::identity::user(conn, &caller.username)?.is_none() {
        return Err(ServiceError::Conflict(format!(
            "{} has no account to own a token",
            caller.username
        )));
    }
    let secret = format!("te_{}", new_secret().map_err(ServiceError::Internal)?);
    let row = db::identity::insert_token(
        conn,
        &caller.username,
        &name,
        role.as_str(),
        &secret_hash(&secret),
        new.expires_in_days,
    )?;
    audit(
        conn,
        caller,
        "token.create",
        format!("token {}", row.id),
        format!("{name} ({role})"),
    )?;
    Ok(CreatedToken {
        info: token(row),
        token: secret,
    })
}

/// Revokes a token of the caller's (an admin may revoke anyone's).
pub fn delete_token(conn: &mut PgConnection, caller: &Caller, id: i64) -> Result<(), ServiceError> {
    let missing = || ServiceError::NotFound(format!("no token {id}"));
    let row = db::identity::token(conn, id)?.ok_or_else(missing)?;
    if !caller.may_act_for(&row.username) {
        return Err(missing());
    }
    db::identity::delete_token(conn, id)?;
    audit(
        conn,
        caller,
        "token.delete",
        format!("token {id}"),
        row.name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_argon2id_and_checked() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches("correct horse", Some(&hash)));
        assert!(!password_matches("wrong horse", Some(&hash)));
        assert!(!password_matches("correct horse", None));
        assert!(!password_matches("x", Some("not a hash")));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
        assert_eq!(secret_hash("x").len(), 64);
        assert_ne!(new_secret().unwrap(), new_secret().unwrap());
    }

    #[test]
    fn admins_act_for_anyone_others_for_themselves() {
        let alice = Caller::new("alice", Role::Member);
        assert!(alice.may_act_for("alice"));
        assert!(!alice.may_act_for("bob"));
        assert!(Caller::new("root", Role::Admin).may_act_for("bob"));
    }
}
