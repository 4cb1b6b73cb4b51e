//! Reading a run's log by byte offset.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use shared::LogChunk;

use super::models::RunRow;
use super::schema::run_log_chunks;

#[derive(QueryableByName)]
struct Chunk {
    #[diesel(sql_type = BigInt)]
    start_offset: i64,
    #[diesel(sql_type = Text)]
    content: String,
}

/// The most log one answer carries; clients follow `next_offset`.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// No stored chunk is longer than this, so that an answer, which carries
/// whole chunks from the one holding its offset, stays near its limit.
pub const MAX_CHUNK_BYTES: i64 = 256 * 1024;

/// The log of `run` from `offset` on, at most [`MAX_ANSWER_BYTES`] (more
/// only when a single chunk is larger). `run` must be read before the
/// chunks: once it is finished, every chunk is in place.
pub fn read_from(conn: &mut PgConnection, run: &RunRow, offset: i64) -> QueryResult<LogChunk> {
    let run_id = run.id;
    let finished = run.status.is_finished();
    let offset = offset.max(0);
    // From the chunk that holds `offset` (the last one starting at or
    // before it, one step down the primary key) on: a poll of a long log
    // reads what it has not seen, not every small chunk before it.
    let chunks: Vec<Chunk> = diesel::sql_query(
        "SELECT start_offset, content FROM run_log_chunks \
         WHERE run_id = $1 \
           AND start_offset >= (SELECT max(start_offset) FROM run_log_chunks \
                                WHERE run_id = $1 AND start_offset <= $2) \
           AND start_offset < $3 \
         ORDER BY start_offset",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<BigInt, _>(offset)
    // Any offset is allowed, up to i64::MAX: past the end is just empty.
    .bind::<BigInt, _>(offset.saturating_add(MAX_ANSWER_BYTES as i64))
    .load(conn)?;
    let mut content = String::new();
    let mut next_offset = offset;
    for Chunk {
        start_offset: start,
        content: text,
    } in chunks
    {
        let end = start + text.len() as i64;
        if end <= next_offset {
            continue;
        }
        if start > next_offset
            || (!content.is_empty() && content.len() + text.len() > MAX_ANSWER_BYTES)
        {
            break;
        }
        let skip = (next_offset - start) as usize;
        let from = (skip..=text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        content.push_str(&text[from..]);
        next_offset = end;
    }
    Ok(LogChunk {
        offset,
        next_offset,
        complete: finished && next_offset >= run.log_bytes,
        content,
    })
}

pub fn read_all(conn: &mut PgConnection, run_id: i64) -> QueryResult<String> {
    let chunks: Vec<String> = run_log_chunks::table
        .filter(run_log_chunks::run_id.eq(run_id))
        .order(run_log_chunks::start_offset)
        .select(run_log_chunks::content)
        .load(conn)?;
    Ok(chunks.concat())
}

/// Splits text into pieces of at most `max` bytes at char boundaries.
pub fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_respect_char_boundaries() {
        let text = "aé".repeat(10);
        let parts = pieces(&text, 4);
        assert!(parts.iter().all(|p| p.len() <= 4));
        assert_eq!(parts.concat(), text);
    }
}
