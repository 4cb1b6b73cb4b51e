//! The audit log: who changed what, and failed logins.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use shared::AuditEntry;

use super::schema::audit_log;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
struct AuditRow {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    target: String,
    detail: String,
}

pub fn insert(
    conn: &mut PgConnection,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
    address: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor.eq(actor),
            audit_log::action.eq(action),
            audit_log::target.eq(target),
            audit_log::detail.eq(detail),
            audit_log::address.eq(address),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A page of entries, newest first: of one actor and one action (or a
/// family: `run` matches `run.create`), if given.
pub fn page(
    conn: &mut PgConnection,
    actor: Option<&str>,
    action: Option<&str>,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<AuditEntry>, i64)> {
    let filtered = || {
        let mut query = audit_log::table.into_boxed();
        if let Some(actor) = actor {
            query = query.filter(audit_log::actor.eq(actor.to_string()));
        }
        if let Some(action) = action {
            let family = format!("{}.%", action.replace(['\\', '%', '_'], ""));
            query = query.filter(
                audit_log::action
                    .eq(action.to_string())
                    .or(audit_log::action.like(family)),
            );
        }
        query
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let rows: Vec<AuditRow> = filtered()
        .select(AuditRow::as_select())
        .order(audit_log::id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
        .load(conn)?;
    let items = rows
        .into_iter()
        .map(|row| AuditEntry {
            at: row.at,
            actor: row.actor,
            action: row.action,
            target: row.target,
            detail: row.detail,
        })
        .collect();
    Ok((items, total))
}

/// Failed logins of a user name, and from an address, within the last
/// `window_secs`.
pub fn recent_login_failures(
    conn: &mut PgConnection,
    username: &str,
    address: &str,
    window_secs: i64,
) -> QueryResult<(i64, i64)> {
    let since = diesel::dsl::sql::<diesel::sql_types::Timestamptz>(&format!(
        "now() - interval '{} seconds'",
        window_secs.max(1)
    ));
    let recent = || {
        audit_log::table
            .filter(audit_log::action.eq("auth.login_failed"))
            .filter(audit_log::at.gt(since.clone()))
    };
    let of_user: i64 = recent()
        .filter(audit_log::actor.eq(username))
        .count()
        .get_result(conn)?;
    let of_address: i64 = recent()
        .filter(audit_log::address.eq(address))
        .count()
        .get_result(conn)?;
    Ok((of_user, of_address))
}
