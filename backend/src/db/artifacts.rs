//! Queries about artifacts: the files a run's tests left, their bytes in
//! chunks, and the tests that named them.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use shared::Artifact;
use std::collections::HashMap;

use super::schema::{run_artifact_chunks, run_artifacts, run_case_attachments};

/// The most attachment lines of one test that are kept.
pub const MAX_ATTACHMENTS_PER_CASE: usize = 100;

/// Whether run `run_id` is still running under `fence`, its row locked
/// until the transaction ends: artifacts are written only by its holder.
pub fn lock_if_ours(conn: &mut PgConnection, run_id: i64, fence: i64) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = BigInt)]
        #[allow(dead_code)]
        id: i64,
    }
    let found: Option<Found> = diesel::sql_query(
        "SELECT id FROM test_runs WHERE id = $1 AND fence = $2 AND status = 'running' FOR UPDATE",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<BigInt, _>(fence)
    .get_result(conn)
    .optional()?;
    Ok(found.is_some())
}

/// Adds an artifact's entry; its bytes follow with [`insert_chunk`].
pub fn insert(conn: &mut PgConnection, run_id: i64, artifact: &Artifact) -> QueryResult<i64> {
    diesel::insert_into(run_artifacts::table)
        .values((
            run_artifacts::run_id.eq(run_id),
            run_artifacts::path.eq(&artifact.path),
            run_artifacts::size.eq(artifact.size),
            run_artifacts::content_type.eq(&artifact.content_type),
        ))
        .returning(run_artifacts::id)
        .get_result(conn)
}

pub fn insert_chunk(
    conn: &mut PgConnection,
    artifact_id: i64,
    seq: i32,
    data: &[u8],
) -> QueryResult<()> {
    diesel::insert_into(run_artifact_chunks::table)
        .values((
            run_artifact_chunks::artifact_id.eq(artifact_id),
            run_artifact_chunks::seq.eq(seq),
            run_artifact_chunks::data.eq(data),
        ))
        .execute(conn)?;
    Ok(())
}

/// Corrects an artifact's size to the bytes actually stored.
pub fn set_size(conn: &mut PgConnection, artifact_id: i64, size: i64) -> QueryResult<()> {
    diesel::update(run_artifacts::table.find(artifact_id))
        .set(run_artifacts::size.eq(size))
        .execute(conn)?;
    Ok(())
}

/// A run's artifacts, by path.
pub fn list(conn: &mut PgConnection, run_id: i64) -> QueryResult<Vec<Artifact>> {
    let rows: Vec<(String, i64, String)> = run_artifacts::table
        .filter(run_artifacts::run_id.eq(run_id))
        .select((
            run_artifacts::path,
            run_artifacts::size,
            run_artifacts::content_type,
        ))
        .order(run_artifacts::path)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(path, size, content_type)| Artifact {
            path,
            size,
            content_type,
        })
        .collect())
}

/// One artifact of a run with its bytes, if the run has it.
pub fn read(
    conn: &mut PgConnection,
    run_id: i64,
    path: &str,
) -> QueryResult<Option<(Artifact, Vec<u8>)>> {
    let found: Option<(i64, i64, String)> = run_artifacts::table
        .filter(run_artifacts::run_id.eq(run_id))
        .filter(run_artifacts::path.eq(path))
        .select((
            run_artifacts::id,
            run_artifacts::size,
            run_artifacts::content_type,
        ))
        .first(conn)
        .optional()?;
    let Some((id, size, content_type)) = found else {
        return Ok(None);
    };
    let chunks: Vec<Vec<u8>> = run_artifact_chunks::table
        .filter(run_artifact_chunks::artifact_id.eq(id))
        .select(run_artifact_chunks::data)
        .order(run_artifact_chunks::seq)
        .load(conn)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    for chunk in chunks {
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some((
        Artifact {
            path: path.to_string(),
            size,
            content_type,
        },
        bytes,
    )))
}

/// Records which tests named which files; the same pair twice is kept once.
pub fn link_to_cases(
    conn: &mut PgConnection,
    run_id: i64,
    links: &[(&str, &str)],
) -> QueryResult<()> {
    let rows: Vec<_> = links
        .iter()
        .map(|(nodeid, path)| {
            (
                run_case_attachments::run_id.eq(run_id),
                run_case_attachments::nodeid.eq(*nodeid),
                run_case_attachments::path.eq(*path),
            )
        })
        .collect();
    for batch in rows.chunks(5000) {
        diesel::insert_into(run_case_attachments::table)
            .values(batch)
            .on_conflict_do_nothing()
            .execute(conn)?;
    }
    Ok(())
}

/// The kept artifacts each test of a run named, by stored node id; a
/// named file that was not kept is left out.
pub fn of_cases(conn: &mut PgConnection, run_id: i64) -> QueryResult<HashMap<String, Vec<String>>> {
    let rows: Vec<(String, String)> = run_case_attachments::table
        .inner_join(
            run_artifacts::table.on(run_artifacts::run_id
                .eq(run_case_attachments::run_id)
                .and(run_artifacts::path.eq(run_case_attachments::path))),
        )
        .filter(run_case_attachments::run_id.eq(run_id))
        .select((run_case_attachments::nodeid, run_case_attachments::path))
        .order((run_case_attachments::nodeid, run_case_attachments::path))
        .load(conn)?;
    let mut by_case: HashMap<String, Vec<String>> = HashMap::new();
    for (nodeid, path) in rows {
        by_case.entry(nodeid).or_default().push(path);
    }
    Ok(by_case)
}
