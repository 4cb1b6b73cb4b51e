//! The database's state version: the sum of the `state_version` counters,
//! which grows with every committed change to what the polled endpoints
//! show (see the migration that creates it for why it is built this way).

use diesel::prelude::*;
use diesel::sql_types::BigInt;

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// Sixteen rows summed: as cheap as a query gets.
pub const VERSION_SQL: &str =
    "SELECT coalesce(sum(changes), 0)::bigint AS version FROM state_version";

pub fn version(conn: &mut PgConnection) -> QueryResult<i64> {
    diesel::sql_query(VERSION_SQL)
        .get_result::<Version>(conn)
        .map(|v| v.version)
}
