//! Users, their sessions and API tokens, and the admin's setup code.
//! Secrets are never stored: only their SHA-256 hashes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{api_tokens, sessions, setup_codes, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub username: String,
    pub role: String,
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens, check_for_backend(diesel::pg::Pg))]
pub struct TokenRow {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub fn user(conn: &mut PgConnection, username: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(username)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn list_users(conn: &mut PgConnection) -> QueryResult<Vec<UserRow>> {
    users::table
        .select(UserRow::as_select())
        .order(users::username)
        .load(conn)
}

/// Inserts a user; false if the name is taken.
pub fn insert_user(
    conn: &mut PgConnection,
    username: &str,
    role: &str,
    password_hash: Option<&str>,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(users::table)
        .values((
            users::username.eq(username),
            users::role.eq(role),
            users::password_hash.eq(password_hash),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(inserted == 1)
}

pub fn set_role(conn: &mut PgConnection, username: &str, role: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(username))
        .set((users::role.eq(role), users::updated_at.eq(diesel::dsl::now)))
        .execute(conn)
}

pub fn set_password(
    conn: &mut PgConnection,
    username: &str,
    password_hash: &str,
) -> QueryResult<usize> {
    diesel::update(users::table.find(username))
        .set((
            users::password_hash.eq(password_hash),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
}

/// Sets the password only if the user has none yet (first start; several
/// instances may start at once).
pub fn set_first_password(
    conn: &mut PgConnection,
    username: &str,
    password_hash: &str,
) -> QueryResult<usize> {
    diesel::update(
        users::table
            .find(username)
            .filter(users::password_hash.is_null()),
    )
    .set((
        users::password_hash.eq(password_hash),
        users::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
}

pub fn delete_user(conn: &mut PgConnection, username: &str) -> QueryResult<usize> {
    diesel::delete(users::table.find(username)).execute(conn)
}

pub fn count_admins(conn: &mut PgConnection) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq("admin"))
        .count()
        .get_result(conn)
}

pub fn insert_session(
    conn: &mut PgConnection,
    secret_hash: &str,
    username: &str,
    hours: i64,
) -> QueryResult<DateTime<Utc>> {
    diesel::sql_query(
        "INSERT INTO sessions (secret_hash, username, expires_at) \
         VALUES ($1, $2, now() + make_interval(hours => $3::int)) RETURNING expires_at",
    )
    .bind::<diesel::sql_types::Text, _>(secret_hash)
    .bind::<diesel::sql_types::Text, _>(username)
    .bind::<diesel::sql_types::BigInt, _>(hours)
    .get_result::<Expiry>(conn)
    .map(|row| row.expires_at)
}

#[derive(QueryableByName)]
struct Expiry {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    expires_at: DateTime<Utc>,
}

/// The user of a live session: name and role.
pub fn session_user(
    conn: &mut PgConnection,
    secret_hash: &str,
) -> QueryResult<Option<(String, String)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::secret_hash.eq(secret_hash))
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .select((users::username, users::role))
        .first(conn)
        .optional()
}

pub fn delete_session(conn: &mut PgConnection, secret_hash: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(secret_hash)).execute(conn)
}

/// Ends every session of a user but `keep` (the one changing its password).
pub fn delete_sessions_of(
    conn: &mut PgConnection,
    username: &str,
    keep: Option<&str>,
) -> QueryResult<usize> {
    diesel::delete(
        sessions::table
            .filter(sessions::username.eq(username))
            .filter(sessions::secret_hash.ne(keep.unwrap_or(""))),
    )
    .execute(conn)
}

/// Sessions past their end, deleted now and then.
pub fn delete_expired_sessions(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(diesel::dsl::now))).execute(conn)
}

pub fn insert_token(
    conn: &mut PgConnection,
    username: &str,
    name: &str,
    role: &str,
    secret_hash: &str,
    expires_in_days: Option<i64>,
) -> QueryResult<TokenRow> {
    // The end on the database's clock, in the insert itself.
    let expires_at = diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>>(
        &match expires_in_days {
            Some(days) => format!("now() + interval '{} days'", days.clamp(0, 100_000)),
            None => "NULL".to_string(),
        },
    );
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::username.eq(username),
            api_tokens::name.eq(name),
            api_tokens::role.eq(role),
            api_tokens::secret_hash.eq(secret_hash),
            api_tokens::expires_at.eq(expires_at),
        ))
        .returning(TokenRow::as_returning())
        .get_result(conn)
}

/// A live token by its secret's hash, with its user's current role.
pub fn token_by_hash(
    conn: &mut PgConnection,
    secret_hash: &str,
) -> QueryResult<Option<(TokenRow, String, String)>> {
    api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::secret_hash.eq(secret_hash))
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(diesel::dsl::now)),
        )
        .select((TokenRow::as_select(), api_tokens::secret_hash, users::role))
        .first(conn)
        .optional()
}

pub fn tokens_of(conn: &mut PgConnection, username: &str) -> QueryResult<Vec<TokenRow>> {
    api_tokens::table
        .filter(api_tokens::username.eq(username))
        .select(TokenRow::as_select())
        .order(api_tokens::id)
        .load(conn)
}

pub fn token(conn: &mut PgConnection, id: i64) -> QueryResult<Option<TokenRow>> {
    api_tokens::table
        .find(id)
        .select(TokenRow::as_select())
        .first(conn)
        .optional()
}

pub fn delete_token(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(api_tokens::table.find(id)).execute(conn)
}

/// Keeps the hash of the user's setup code, replacing an older one.
pub fn put_setup_code(conn: &mut PgConnection, username: &str, code_hash: &str) -> QueryResult<()> {
    diesel::insert_into(setup_codes::table)
        .values((
            setup_codes::username.eq(username),
            setup_codes::code_hash.eq(code_hash),
        ))
        .on_conflict(setup_codes::username)
        .do_update()
        .set((
            setup_codes::code_hash.eq(code_hash),
            setup_codes::created_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn setup_code(conn: &mut PgConnection, username: &str) -> QueryResult<Option<String>> {
    setup_codes::table
        .find(username)
        .select(setup_codes::code_hash)
        .first(conn)
        .optional()
}

pub fn delete_setup_code(conn: &mut PgConnection, username: &str) -> QueryResult<usize> {
    diesel::delete(setup_codes::table.find(username)).execute(conn)
}
