//! Conditional GETs for the endpoints browsers poll every second: each
//! answer carries an ETag made of the database's state version (see
//! `db::state`) and the request's URL, and a request whose `If-None-Match`
//! names the current one gets `304 Not Modified` after one tiny query
//! instead of the endpoint's own queries.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::blocking::with_db;
use super::error::ApiError;
use super::state::AppState;
use crate::db::{self, PgConn};
use crate::service::ServiceError;

/// An answer to a conditional GET: the current ETag, and the body unless
/// the client already has it.
pub struct Tagged<T> {
    etag: String,
    body: Option<T>,
}

impl<T> Tagged<T> {
    /// `build` makes the 200 answer from the body; a 304 has no body.
    pub fn respond(self, build: impl FnOnce(T) -> HttpResponse) -> HttpResponse {
        let mut response = match self.body {
            Some(body) => build(body),
            None => HttpResponse::NotModified().finish(),
        };
        let headers = response.headers_mut();
        if let Ok(etag) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, etag);
        }
        // Stored, but asked again every time: the poll stays live.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// Reads the state version and, unless the client's `If-None-Match` has
/// it, runs `query`, on one pooled connection. The version is read before
/// the query, so the body is at least as new as its ETag says: a change
/// committed in between gives a newer body under an older tag, which only
/// costs the client one more full answer.
pub async fn conditional<T, F>(
    state: &AppState,
    req: &HttpRequest,
    query: F,
) -> Result<Tagged<T>, ApiError>
where
    F: FnOnce(&mut PgConn) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    tagged(state, req, move |conn, _, version| {
        Ok((version, query(conn)?))
    })
    .await
}

/// The ETag of `resource` at state `version`.
fn etag(version: i64, resource: u64) -> String {
    format!("\"{version:x}-{resource:016x}\"")
}

/// What [`conditional`] and [`conditional_cached`] share: the state
/// version first, 304 when the client holds its tag, else the body that
/// `build` gives for that version, tagged with the version it belongs to.
async fn tagged<T, F>(state: &AppState, req: &HttpRequest, build: F) -> Result<Tagged<T>, ApiError>
where
    F: FnOnce(&mut PgConn, u64, i64) -> Result<(i64, T), ServiceError> + Send + 'static,
    T: Send + 'static,
{
    let resource = resource_hash(req);
    let held = if_none_match(req);
    with_db(&state.pool, move |conn| {
        let version = db::state::version(conn)?;
        // `*` is not honoured: it would answer 304 for a run that does
        // not exist; the full query says 404 instead.
        let current = etag(version, resource);
        if held.contains(&current) {
            return Ok(Tagged {
                etag: current,
                body: None,
            });
        }
        let (at, body) = build(conn, resource, version)?;
        let etag = etag(at, resource);
        let body = (!held.contains(&etag)).then_some(body);
        Ok(Tagged { etag, body })
    })
    .await
}

/// Recent answers by URL and state version, so that many clients polling
/// the same view of an idle system cost one tiny query each, not the
/// view's own queries (the run list's count alone scans the table).
/// An entry is never served for a newer state than it was built at.
///
/// When the state moves, every client polling a view asks at once; one of
/// them builds the new answer while the others wait for it (per URL), so a
/// busy system costs one build per view and change, not one per client.
#[derive(Default)]
pub struct ResponseCache {
    entries: Mutex<HashMap<u64, CachedAnswer>>,
    builders: Mutex<HashMap<u64, Arc<Mutex<()>>>>,
}

/// The state version an answer was built at, and the answer.
type CachedAnswer = (i64, Arc<dyn Any + Send + Sync>);

/// Enough for the views a team has open; each entry is one page of JSON.
const CACHED_ANSWERS: usize = 64;

impl ResponseCache {
    fn get<T: Clone + 'static>(&self, resource: u64, version: i64) -> Option<T> {
        self.get_since(resource, version)
            .and_then(|(at, body)| (at == version).then_some(body))
    }

    /// The answer built at `version` or later, with the version it has.
    fn get_since<T: Clone + 'static>(&self, resource: u64, version: i64) -> Option<(i64, T)> {
        let entries = self.entries.lock().ok()?;
        let (at, body) = entries.get(&resource)?;
        (*at >= version).then(|| body.downcast_ref::<T>().cloned().map(|body| (*at, body)))?
    }

    /// The cached answer for `resource` at `version` or later, else the one
    /// `build` makes, which is kept. Concurrent callers for one resource
    /// take turns, so that only the first of them builds; the others get
    /// its answer. Returns the version the answer belongs to.
    pub fn answer<T, E>(
        &self,
        resource: u64,
        version: i64,
        build: impl FnOnce() -> Result<T, E>,
    ) -> Result<(i64, T), E>
    where
        T: Clone + Send + Sync + 'static,
    {
        if let Some(body) = self.get(resource, version) {
            return Ok((version, body));
        }
        let builder = self.builder(resource);
        let _turn = builder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = self.get_since(resource, version) {
            return Ok(found);
        }
        let body = build()?;
        self.put(resource, version, body.clone());
        Ok((version, body))
    }

    fn builder(&self, resource: u64) -> Arc<Mutex<()>> {
        let mut builders = self
            .builders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if builders.len() >= CACHED_ANSWERS && !builders.contains_key(&resource) {
            // A caller still holding an old one only builds once more.
            builders.clear();
        }
        Arc::clone(builders.entry(resource).or_default())
    }

    fn put<T: Send + Sync + 'static>(&self, resource: u64, version: i64, body: T) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHED_ANSWERS && !entries.contains_key(&resource) {
                // Old versions are useless anyway: start again.
                entries.clear();
            }
            entries.insert(resource, (version, Arc::new(body)));
        }
    }
}

/// [`conditional`], also answering from the [`ResponseCache`] when the
/// state has not changed since the same URL was last answered (or from an
/// answer another request built at a newer state, tagged as that one).
pub async fn conditional_cached<T, F>(
    state: &AppState,
    req: &HttpRequest,
    query: F,
) -> Result<Tagged<T>, ApiError>
where
    F: FnOnce(&mut PgConn) -> Result<T, ServiceError> + Send + 'static,
    T: Clone + Send + Sync + 'static,
{
    let cache = Arc::clone(&state.responses);
    tagged(state, req, move |conn, resource, version| {
        cache.answer(resource, version, || query(conn))
    })
    .await
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

/// FNV-1a of what, besides the database, decides the body: the build and
/// the URL. Stable across processes, so that instances behind one proxy
/// agree on tags.
fn resource_hash(req: &HttpRequest) -> u64 {
    let parts = [
        env!("CARGO_PKG_VERSION"),
        " ",
        req.path(),
        "?",
        req.query_string(),
    ];
    crate::hash::fnv1a(parts.iter().flat_map(|part| part.bytes()))
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
    fn cached_answers_are_served_only_for_their_version() {
        let cache = ResponseCache::default();
        cache.put(1, 7, vec![1, 2, 3]);
        assert_eq!(cache.get::<Vec<i32>>(1, 7), Some(vec![1, 2, 3]));
        assert_eq!(
            cache.get::<Vec<i32>>(1, 8),
            None,
            "a newer state is not served stale"
        );
        assert_eq!(
            cache.get::<Vec<i32>>(2, 7),
            None,
            "another URL is another answer"
        );
        assert_eq!(
            cache.get::<String>(1, 7),
            None,
            "another type is never confused"
        );
        for resource in 0..(CACHED_ANSWERS as u64 + 5) {
            cache.put(resource, 9, resource);
        }
        let kept = cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert!(kept <= CACHED_ANSWERS, "bounded: {kept}");
    }

    #[test]
    fn clients_asking_at_once_share_one_build() {
        let cache = Arc::new(ResponseCache::default());
        let builds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Arc::new(std::sync::Barrier::new(8));
        let askers: Vec<_> = (0..8)
            .map(|_| {
                let (cache, builds, start) = (cache.clone(), builds.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    cache.answer(3, 11, || {
                        builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        Ok::<_, ()>("page".to_string())
                    })
                })
            })
            .collect();
        for asker in askers {
            assert_eq!(asker.join().unwrap(), Ok((11, "page".to_string())));
        }
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 1);

        let newer = cache.answer(3, 12, || Ok::<_, ()>("newer".to_string()));
        assert_eq!(
            newer,
            Ok((12, "newer".to_string())),
            "a new state builds again"
        );
        let late = cache.answer(3, 11, || Ok::<_, ()>("unused".to_string()));
        assert_eq!(
            late,
            Ok((12, "newer".to_string())),
            "an older state is given the newer answer, tagged as such"
        );
        let failed = cache.answer(4, 1, || Err::<String, _>("down"));
        assert_eq!(failed, Err("down"), "errors are not kept");
    }

    #[test]
    fn the_resource_hash_depends_on_path_and_query() {
        let a = TestRequest::with_uri("/api/runs?page=1").to_http_request();
        let b = TestRequest::with_uri("/api/runs?page=2").to_http_request();
        let c = TestRequest::with_uri("/api/runs?page=1").to_http_request();
        assert_ne!(resource_hash(&a), resource_hash(&b));
        assert_eq!(resource_hash(&a), resource_hash(&c));
    }
}
