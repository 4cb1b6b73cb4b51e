//! Browser safety: no web page a user visits can make the service change
//! anything, and no DNS name rebound to this machine can reach it. Every
//! answer carries headers that keep browsers from sniffing, framing or
//! running what the API sends.
//!
//! A browser sends a cross-site `POST` (a form, or `fetch` with a simple
//! body such as multipart) without asking first, so an upload or a re-run
//! could come from any page. Such requests carry `Origin` and, in current
//! browsers, `Sec-Fetch-Site`; scripts and curl send neither, and pass.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use super::error::ApiError;
use super::state::AppState;

/// Headers on every answer of the API. Nothing it serves is a page: a
/// response opened in a browser may run nothing, load nothing and sit in
/// no frame.
const ANSWER_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    // Other sites may not embed answers (`<script src>`, `<img src>`).
    ("cross-origin-resource-policy", "same-origin"),
];

/// Who may reach the service from a browser: its public origin and, if
/// set, the host names it answers to.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `PUBLIC_URL`'s origin (`https://executor.example`), if set: the
    /// origin browsers see behind a proxy, accepted besides the origin the
    /// request itself was sent to.
    public_origin: Option<String>,
    /// `ALLOWED_HOSTS`, if set.
    allowed_hosts: Option<Vec<AllowedHost>>,
}

/// One entry of `ALLOWED_HOSTS`: a host name, on any port or on one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl Policy {
    /// Whether `PUBLIC_URL` is an `https` URL: browsers reach the service
    /// over TLS, so its cookies must say `Secure`.
    pub fn public_is_https(&self) -> bool {
        self.public_origin
            .as_deref()
            .is_some_and(|origin| origin.starts_with("https://"))
    }

    /// Reads `PUBLIC_URL` (an `http(s)://host[:port][/path]` URL) and
    /// `ALLOWED_HOSTS` (comma-separated `host` or `host:port`).
    pub fn parse(public_url: Option<&str>, allowed_hosts: Option<&str>) -> Result<Policy, String> {
        let public_origin = match public_url {
            Some(url) => Some(origin_of(url).ok_or_else(|| {
                format!("PUBLIC_URL must be an http:// or https:// URL, not {url:?}")
            })?),
            None => None,
        };
        let allowed_hosts = match allowed_hosts {
            Some(list) => {
                let mut hosts = Vec::new();
                for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                    let (host, port) =
                        split_host(&entry.to_ascii_lowercase()).ok_or_else(|| {
                            format!("ALLOWED_HOSTS: {entry:?} is not a host or host:port")
                        })?;
                    hosts.push(AllowedHost { host, port });
                }
                // Naming PUBLIC_URL allows its host too.
                if let Some((host, _)) = public_origin
                    .as_deref()
                    .and_then(|o| o.split_once("://"))
                    .and_then(|(_, authority)| split_host(authority))
                {
                    hosts.push(AllowedHost { host, port: None });
                }
                Some(hosts)
            }
            None => None,
        };
        Ok(Policy {
            public_origin,
            allowed_hosts,
        })
    }

    /// Whether a request naming these hosts (its `Host`, and any
    /// `X-Forwarded-Host` or `Forwarded: host=`) may be answered at all.
    /// IP addresses and `localhost` always may: a rebound DNS name is what
    /// the list is against, and a page can only name this machine by an
    /// address if it was loaded from this machine.
    fn check_hosts<'a>(&self, hosts: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
        let Some(allowed) = &self.allowed_hosts else {
            return Ok(());
        };
        for raw in hosts {
            let Some((host, port)) = split_host(&raw.trim().to_ascii_lowercase()) else {
                return Err(format!("the Host {raw:?} is not a host name"));
            };
            let always = host == "localhost" || is_ip_literal(&host);
            let listed = allowed
                .iter()
                .any(|a| a.host == host && (a.port.is_none() || a.port == port));
            if !always && !listed {
                return Err(format!(
                    "the host {raw:?} is not one this service answers to (ALLOWED_HOSTS)"
                ));
            }
        }
        Ok(())
    }

    /// Whether a request may change something: only from the service's own
    /// origin (`own`: where the request was sent, as scheme and host), or
    /// `PUBLIC_URL`'s; never cross-site or same-site by the browser's word.
    fn check_writer(
        &self,
        fetch_site: Option<&str>,
        origin: Option<&str>,
        own: &str,
    ) -> Result<(), String> {
        if let Some(site) = fetch_site.map(str::trim) {
            if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
                return Err(format!(
                    "a request from another site ({site}) cannot change anything here"
                ));
            }
        }
        let Some(origin) = origin.map(str::trim) else {
            return Ok(());
        };
        let Some(origin) = origin_of(origin) else {
            // `null` (sandboxed frames, some redirects) or garbage.
            return Err(format!(
                "a request from an opaque origin ({origin}) cannot change anything here"
            ));
        };
        let own = origin_of(own);
        if own.as_deref() == Some(origin.as_str())
            || self.public_origin.as_deref() == Some(origin.as_str())
        {
            Ok(())
        } else {
            Err(format!(
                "a request from {origin} cannot change anything here; the service's origin is {}",
                self.public_origin
                    .clone()
                    .or(own)
                    .unwrap_or_else(|| "unknown".into())
            ))
        }
    }
}

/// Refuses what browser safety forbids before anything else runs, and
/// puts the answer headers on every answer.
pub async fn browser_safety(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let verdict = match req.app_data::<web::Data<AppState>>() {
        Some(state) => judge(&state.config.browser, &req),
        None => Ok(()),
    };
    let mut response = match verdict {
        Ok(()) => next.call(req).await?.map_into_left_body(),
        Err(why) => {
            tracing::warn!(method = %req.method(), path = %req.path(), reason = %why,
                "refused by browser safety");
            req.into_response(ApiError::Forbidden(why).error_response())
                .map_into_right_body()
        }
    };
    add_answer_headers(response.headers_mut());
    Ok(response)
}

fn judge(policy: &Policy, req: &ServiceRequest) -> Result<(), String> {
    let headers = req.headers();
    let mut hosts: Vec<&str> = Vec::new();
    match header_str(headers, &header::HOST) {
        Some(host) => hosts.push(host),
        None => {
            if let Some(authority) = req.uri().authority() {
                hosts.push(authority.as_str());
            }
        }
    }
    for value in headers.get_all("x-forwarded-host") {
        hosts.extend(value.to_str().unwrap_or("\u{0}").split(','));
    }
    for value in headers.get_all(header::FORWARDED) {
        hosts.extend(forwarded_hosts(value.to_str().unwrap_or("host=\u{0}")));
    }
    policy.check_hosts(hosts)?;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let info = req.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host());
    policy.check_writer(
        header_str(headers, &HeaderName::from_static("sec-fetch-site")),
        header_str(headers, &header::ORIGIN),
        &own,
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    // A header that is not text is not one a browser sent: treat it as
    // foreign rather than absent.
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"))
}

/// The `host=` values of a `Forwarded` header (RFC 7239).
fn forwarded_hosts(value: &str) -> impl Iterator<Item = &str> {
    value
        .split([',', ';'])
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case("host"))
        .map(|(_, host)| host.trim().trim_matches('"'))
}

fn add_answer_headers(headers: &mut HeaderMap) {
    for (name, value) in ANSWER_HEADERS {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}

/// `scheme://host[:port]` of an http(s) URL or origin, lower case, without
/// the scheme's default port: the form browsers send in `Origin`.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.contains('@') {
        return None;
    }
    let (host, port) = split_host(&authority)?;
    Some(match port.filter(|p| *p != default_port) {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port` (lower case
/// already); the host keeps the brackets of an IPv6 address and loses a
/// trailing dot.
fn split_host(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let valid = !host.is_empty()
        && (host.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    if !valid {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_string(), port))
}

fn is_ip_literal(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_as_browsers_send_them() {
        assert_eq!(
            origin_of("HTTP://Example.COM:80/x?y").as_deref(),
            Some("http://example.com")
        );
        assert_eq!(
            origin_of("https://example.com:443").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8000").as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(
            origin_of("http://[::1]:8080/").as_deref(),
            Some("http://[::1]:8080")
        );
        for bad in [
            "null",
            "",
            "file:///etc",
            "ftp://x",
            "http://",
            "http://a b",
            "http://u@host",
            "http://host:99999",
        ] {
            assert_eq!(origin_of(bad), None, "{bad:?}");
        }
    }

    fn policy(public_url: Option<&str>, hosts: Option<&str>) -> Policy {
        Policy::parse(public_url, hosts).unwrap()
    }

    #[test]
    fn writers_must_come_from_the_own_or_public_origin() {
        let own = "http://127.0.0.1:8000";
        let open = policy(None, None);
        assert!(open.check_writer(None, None, own).is_ok(), "scripts pass");
        assert!(open
            .check_writer(Some("same-origin"), Some("http://127.0.0.1:8000"), own)
            .is_ok());
        assert!(open.check_writer(Some("none"), None, own).is_ok());
        assert!(open
            .check_writer(None, Some("http://evil.example"), own)
            .is_err());
        assert!(open.check_writer(None, Some("null"), own).is_err());
        assert!(open.check_writer(Some("cross-site"), None, own).is_err());
        assert!(open.check_writer(Some("same-site"), None, own).is_err());
        assert!(open
            .check_writer(None, Some("https://127.0.0.1:8000"), own)
            .is_err());
        let proxied = policy(Some("https://executor.example/"), None);
        assert!(proxied
            .check_writer(
                None,
                Some("https://executor.example"),
                "http://backend:8080"
            )
            .is_ok());
        assert!(proxied
            .check_writer(None, Some("http://executor.example"), "http://backend:8080")
            .is_err());
    }

    #[test]
    fn allowed_hosts_refuse_rebound_names_only() {
        let open = policy(None, None);
        assert!(open.check_hosts(["evil.example"]).is_ok(), "off by default");
        let strict = policy(
            Some("https://public.example"),
            Some("executor.example, other.example:8000"),
        );
        for host in [
            "executor.example",
            "EXECUTOR.example:1234",
            "other.example:8000",
            "public.example",
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.1.2.3",
        ] {
            assert!(strict.check_hosts([host]).is_ok(), "{host}");
        }
        for host in [
            "evil.example",
            "other.example:8001",
            "evil.public.example",
            "",
        ] {
            assert!(strict.check_hosts([host]).is_err(), "{host}");
        }
        assert!(strict
            .check_hosts(["127.0.0.1:8080", "evil.example"])
            .is_err());
        assert!(Policy::parse(None, Some("a b")).is_err());
        assert!(Policy::parse(Some("executor.example"), None).is_err());
    }

    #[test]
    fn forwarded_hosts_are_read() {
        let hosts: Vec<_> =
            forwarded_hosts("for=1.2.3.4;host=\"a.example\", host=b.example").collect();
        assert_eq!(hosts, ["a.example", "b.example"]);
    }
}
