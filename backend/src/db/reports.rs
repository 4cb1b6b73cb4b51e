//! A finished run's JUnit XML report, as pytest wrote it.

use diesel::prelude::*;

use super::schema::run_reports;

/// The report of a run, if it has one.
pub fn junit_xml(conn: &mut PgConnection, run_id: i64) -> QueryResult<Option<String>> {
    run_reports::table
        .find(run_id)
        .select(run_reports::junit_xml)
        .first(conn)
        .optional()
}

/// Stores a report, inside the transaction that finishes its run.
pub fn store(conn: &mut PgConnection, run_id: i64, junit_xml: &str) -> QueryResult<usize> {
    diesel::insert_into(run_reports::table)
        .values((
            run_reports::run_id.eq(run_id),
            run_reports::junit_xml.eq(junit_xml),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
}
