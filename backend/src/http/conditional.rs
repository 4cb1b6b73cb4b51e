//! Conditional GETs for the endpoints browsers poll every second: each
//! answer carries an ETag made of the database's state version (see
//! `db::state`) and the resource (its path and its parsed query), and a
//! request whose `If-None-Match` names the current one gets `304 Not
//! Modified` after one tiny pipelined query (see `super::versions`)
//! instead of the endpoint's own queries.
//!
//! The resource is the request's path and the query *as parsed*
//! (`CacheKey`), never the raw query string: unknown or repeated
//! parameters make no new tag and no new cache entry.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::blocking::with_db;
use super::error::ApiError;
use super::state::AppState;
use crate::db::PgConn;
use crate::service::ServiceError;

/// What decides a body besides the database: the path and the parsed
/// query, serialized the same way whatever order or spelling the client
/// used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey(u64);

impl CacheKey {
    /// The resource at `req`'s path with `query` (its parsed parameters,
    /// `&()` when it takes none).
    pub fn of(req: &HttpRequest, query: &impl Serialize) -> CacheKey {
        let query = serde_urlencoded::to_string(query).unwrap_or_default();
        let parts = [env!("CARGO_PKG_VERSION"), " ", req.path(), "?", &query];
        CacheKey(crate::hash::fnv1a(
            parts.iter().flat_map(|part| part.bytes()),
        ))
    }
}

/// The ETag of `resource` at state `version`.
fn etag(version: i64, key: CacheKey) -> String {
    format!("\"{version:x}-{:016x}\"", key.0)
}

/// An answer with its ETag: 304 when the client holds it, else the JSON.
fn respond(etag: &str, held: &[String], body: Option<Bytes>) -> HttpResponse {
    let mut response = match body {
        Some(body) if !held.iter().any(|tag| tag == etag) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        _ => HttpResponse::NotModified().finish(),
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, etag);
    }
    // Stored, but asked again every time: the poll stays live.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Serializes an answer once, whoever it is served to.
fn to_json(body: &impl Serialize) -> Result<Bytes, ServiceError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(ServiceError::internal)
}

/// Reads the state version (see [`super::versions`]) and, unless the
/// client's `If-None-Match` has it, runs `query` on a pooled connection.
/// The version is read before the query, so the body is at least as new
/// as its ETag says: a change committed in between gives a newer body
/// under an older tag, which only costs the client one more full answer.
pub async fn conditional<T, F>(
    state: &AppState,
    req: &HttpRequest,
    key: CacheKey,
    query: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(&mut PgConn) -> Result<T, ServiceError> + Send + 'static,
    T: Serialize + Send + 'static,
{
    let held = if_none_match(req);
    let version = state.versions.current(&state.pool).await?;
    // `*` is not honoured: it would answer 304 for a run that does not
    // exist; the full query says 404 instead.
    let tag = etag(version, key);
    if held.contains(&tag) {
        return Ok(respond(&tag, &held, None));
    }
    let body = with_db(&state.pool, move |conn| to_json(&query(conn)?)).await?;
    Ok(respond(&tag, &held, Some(body)))
}

/// Like [`conditional`] with raw text bodies (logs, reports), which are
/// not JSON.
pub async fn conditional_text<F>(
    state: &AppState,
    req: &HttpRequest,
    key: CacheKey,
    content_type: &'static str,
    query: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(&mut PgConn) -> Result<String, ServiceError> + Send + 'static,
{
    let held = if_none_match(req);
    let version = state.versions.current(&state.pool).await?;
    let tag = etag(version, key);
    let mut response = if held.contains(&tag) {
        HttpResponse::NotModified().finish()
    } else {
        let text = with_db(&state.pool, query).await?;
        HttpResponse::Ok().content_type(content_type).body(text)
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// [`conditional`], also answering from the [`ResponseCache`] when the
/// state has not changed since the same resource was last answered (or
/// from an answer another request built at a newer state, tagged as that
/// one). Waiting for another request's build holds no connection and no
/// thread.
pub async fn conditional_cached<T, F>(
    state: &AppState,
    req: &HttpRequest,
    key: CacheKey,
    query: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(&mut PgConn) -> Result<T, ServiceError> + Send + 'static,
    T: Serialize + Send + 'static,
{
    let held = if_none_match(req);
    let version = state.versions.current(&state.pool).await?;
    let current = etag(version, key);
    if held.contains(&current) {
        return Ok(respond(&current, &held, None));
    }
    let cache = &state.responses;
    if let Some((at, body)) = cache.get_since(key, version) {
        return Ok(respond(&etag(at, key), &held, Some(body)));
    }
    let builder = cache.builder(key);
    let _turn = builder.lock().await;
    // Whoever held the turn before may have built it meanwhile.
    if let Some((at, body)) = cache.get_since(key, version) {
        return Ok(respond(&etag(at, key), &held, Some(body)));
    }
    let body = with_db(&state.pool, move |conn| to_json(&query(conn)?)).await?;
    cache.put(key, version, body.clone());
    Ok(respond(&current, &held, Some(body)))
}

/// Recent answers by resource and state version, so that many clients
/// polling the same view of an idle system cost one tiny query each, not
/// the view's own queries (the run list's count alone scans the table).
/// An entry is never served for an older state than the asker saw. Entries
/// are serialized JSON, shared (not copied) by every answer that uses
/// them, and bounded in number and in bytes.
///
/// When the state moves, every client polling a view asks at once; one of
/// them builds the new answer while the others wait for it (per resource),
/// so a busy system costs one build per view and change, not one per
/// client.
#[derive(Default)]
pub struct ResponseCache {
    entries: Mutex<HashMap<CacheKey, (i64, Bytes)>>,
    builders: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// Enough for the views a team has open.
const CACHED_ANSWERS: usize = 256;
/// The most the cached answers may hold in all.
const CACHED_BYTES: usize = 32 * 1024 * 1024;

impl ResponseCache {
    /// The answer built at `version` or later, with the version it has.
    fn get_since(&self, key: CacheKey, version: i64) -> Option<(i64, Bytes)> {
        let entries = self.entries.lock().ok()?;
        let (at, body) = entries.get(&key)?;
        (*at >= version).then(|| (*at, body.clone()))
    }

    fn builder(&self, key: CacheKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut builders = self
            .builders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if builders.len() >= CACHED_ANSWERS && !builders.contains_key(&key) {
            // A caller still holding an old one only builds once more.
            builders.clear();
        }
        Arc::clone(builders.entry(key).or_default())
    }

    fn put(&self, key: CacheKey, version: i64, body: Bytes) {
        if body.len() > CACHED_BYTES / 8 {
            // One answer may not crowd out all the others.
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key, (version, body));
            let mut total: usize = entries.values().map(|(_, body)| body.len()).sum();
            while entries.len() > CACHED_ANSWERS || total > CACHED_BYTES {
                // The answer of the oldest state goes first.
                let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                if let Some((_, body)) = entries.remove(&oldest) {
                    total -= body.len();
                }
            }
        }
    }
}

/// The tags of `If-None-Match`, weak ones (`W/"…"`, as proxies that
/// compress make them) compared as strong: the bodies are the same bytes.
fn if_none_match(req: &HttpRequest) -> Vec<String> {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/").to_string())
        .filter(|tag| !tag.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn weak_and_listed_tags_are_read() {
        let req = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "W/\"a-1\", \"b-2\""))
            .to_http_request();
        assert_eq!(if_none_match(&req), vec!["\"a-1\"", "\"b-2\""]);
    }

    #[test]
    fn cached_answers_are_served_only_for_their_version_or_a_newer_one() {
        let cache = ResponseCache::default();
        let (one, two) = (CacheKey(1), CacheKey(2));
        cache.put(one, 7, Bytes::from_static(b"[1,2,3]"));
        assert_eq!(
            cache.get_since(one, 7),
            Some((7, Bytes::from_static(b"[1,2,3]")))
        );
        assert_eq!(cache.get_since(one, 6).map(|(at, _)| at), Some(7));
        assert_eq!(
            cache.get_since(one, 8),
            None,
            "a newer state is not served stale"
        );
        assert_eq!(
            cache.get_since(two, 7),
            None,
            "another resource is another answer"
        );
        for resource in 0..(CACHED_ANSWERS as u64 + 5) {
            cache.put(CacheKey(resource), 9, Bytes::from_static(b"{}"));
        }
        let kept = cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert!(kept <= CACHED_ANSWERS, "bounded in number: {kept}");
        let big = Bytes::from(vec![b' '; CACHED_BYTES / 9]);
        for resource in 0..20 {
            cache.put(CacheKey(1000 + resource), 10 + resource as i64, big.clone());
        }
        let held: usize = cache
            .entries
            .lock()
            .map(|e| e.values().map(|(_, b)| b.len()).sum())
            .unwrap_or(usize::MAX);
        assert!(held <= CACHED_BYTES, "bounded in bytes: {held}");
    }

    #[actix_web::test]
    async fn askers_of_one_resource_take_turns_and_only_the_first_builds() {
        let cache = Arc::new(ResponseCache::default());
        let key = CacheKey(3);
        let first = cache.builder(key);
        let held = first.lock().await;
        let second = cache.builder(key);
        assert!(second.try_lock().is_err(), "the same turn for one resource");
        assert!(
            cache.builder(CacheKey(4)).try_lock().is_ok(),
            "another resource is free"
        );
        cache.put(key, 11, Bytes::from_static(b"page"));
        drop(held);
        let _turn = second.lock().await;
        assert_eq!(
            cache.get_since(key, 11).map(|(_, b)| b),
            Some(Bytes::from_static(b"page"))
        );
    }

    #[test]
    fn the_key_is_the_path_and_the_parsed_query() {
        #[derive(Serialize)]
        struct Page {
            page: Option<i64>,
        }
        let a = TestRequest::with_uri("/api/runs?page=1&x=9").to_http_request();
        let b = TestRequest::with_uri("/api/runs?page=2").to_http_request();
        let c = TestRequest::with_uri("/api/runs?x=1").to_http_request();
        let key = |req: &HttpRequest, page| CacheKey::of(req, &Page { page });
        assert_ne!(key(&a, Some(1)), key(&b, Some(2)));
        assert_eq!(
            key(&a, Some(1)),
            key(&c, Some(1)),
            "unknown parameters are no new resource"
        );
        let other = TestRequest::with_uri("/api/runs/1").to_http_request();
        assert_ne!(CacheKey::of(&other, &()), CacheKey::of(&a, &()));
    }
}
