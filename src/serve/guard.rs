//! What every request passes before a route and every answer after it:
//! the `Host` check (against DNS rebinding), the same-origin rule for
//! writes (against cross-site requests from a page the owner visits), the
//! security headers, and the JSON error shape for the answers the framework
//! makes itself (404, 405, 413, a bad query string).
//!
//! The checks are pure functions of the request's headers; `guard` is the
//! middleware around them.

use std::net::{IpAddr, SocketAddr};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use http_body_util::BodyExt as _;

use super::config::ServeConfig;
use super::reply::ApiError;
use super::state::Shared;

/// The page loads its own scripts, styles and icon and talks only to its
/// own server; nothing may frame it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `host[:port]` split; an IPv6 literal keeps no brackets.
fn split_host(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    Some((host, port))
}

/// Whether `authority` (a `Host` header) names this server: its listen
/// address (any address when it listens on all), `localhost` at its port,
/// or one of the configured names. A name an attacker's DNS points here
/// (rebinding) is none of these.
pub fn host_allowed(authority: &str, listen: SocketAddr, names: &[String]) -> bool {
    let Some((host, port)) = split_host(authority.trim()) else {
        return false;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let at_port = port.is_none_or(|p| p == listen.port());
    match host.parse::<IpAddr>() {
        Ok(ip) => at_port && (ip == listen.ip() || listen.ip().is_unspecified()),
        Err(_) if host == "localhost" => at_port,
        // Behind a reverse proxy the name's port is the proxy's.
        Err(_) => names.contains(&host),
    }
}

/// A write (anything but GET and HEAD) must come from the server's own page
/// or from a client that is no browser page at all: a browser says where a
/// request comes from (`Sec-Fetch-Site`, `Origin`), and a JSON content type
/// is one a cross-site form or `no-cors` fetch cannot send without asking.
pub fn write_allowed(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)"))
    };
    let refused = |why: String| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("cross-site writes are refused: {why}"),
        ))
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && !matches!(site, "same-origin" | "none")
    {
        return refused(format!(
            "the request comes from another site (Sec-Fetch-Site: {site})"
        ));
    }
    if let Some(origin) = text(header::ORIGIN) {
        let from = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let host = text(header::HOST);
        if !from
            .zip(host)
            .is_some_and(|(from, host)| from.eq_ignore_ascii_case(host))
        {
            return refused(format!(
                "Origin {origin} is not this server ({})",
                host.unwrap_or("no Host")
            ));
        }
    }
    let json = text(header::CONTENT_TYPE).is_some_and(|kind| {
        let media = kind.split(';').next().unwrap_or_default().trim();
        media.eq_ignore_ascii_case("application/json")
            || media.to_ascii_lowercase().ends_with("+json")
    });
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "writes need `Content-Type: application/json`",
        ));
    }
    Ok(())
}

fn secure(headers: &mut HeaderMap) {
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// An error the framework answered in plain text, in the API's JSON shape,
/// keeping its status and headers (`Allow` on a 405).
async fn reshape(response: Response, path: &str, max_body: usize) -> Response {
    let (mut parts, body) = response.into_parts();
    let message = match parts.status {
        StatusCode::NOT_FOUND => format!("no such path: {path}"),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            format!("{path} does not take this method (it takes {allow})")
        }
        StatusCode::PAYLOAD_TOO_LARGE => too_large(max_body).message,
        // The framework's own words (a bad query string says which part);
        // they are short, but read no more than a page of them.
        _ => match to_bytes(body, 4096).await {
            Ok(text) if !text.is_empty() => String::from_utf8_lossy(&text).into_owned(),
            _ => parts.status.to_string(),
        },
    };
    let shaped = ApiError::new(parts.status, message).into_response();
    let (shaped_parts, shaped_body) = shaped.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        shaped_parts.headers[header::CONTENT_TYPE].clone(),
    );
    Response::from_parts(parts, Body::new(shaped_body))
}

fn too_large(max_body: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than serve.max_body ({max_body} bytes)"),
    )
}

/// The request with its body read whole, within `header_timeout` and
/// `max_body`: a client that sends its headers and then drips the body
/// must not hold a connection for ever.
async fn read_body(request: Request, config: &ServeConfig) -> Result<Request, ApiError> {
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, config.max_body);
    let read = tokio::time::timeout(config.header_timeout, limited.collect()).await;
    match read {
        Ok(Ok(collected)) => Ok(Request::from_parts(parts, Body::from(collected.to_bytes()))),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(config.max_body)),
        Ok(Err(e)) => Err(ApiError::bad(format!("the body could not be read: {e}"))),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within serve.header_timeout ({} s)",
                config.header_timeout.as_secs_f64()
            ),
        )),
    }
}

pub async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or_default());
    let config = &state.config;
    let checked = match host {
        Some(host) if !host_allowed(host, config.listen, &config.allowed_hosts) => {
            Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this server does not answer to the host name {host:?}: add it to serve.allowed_hosts if it is yours"
                ),
            ))
        }
        _ => write_allowed(request.method(), request.headers()),
    };
    let checked = match checked {
        Ok(()) => read_body(request, config).await,
        Err(refused) => Err(refused),
    };
    let mut response = match checked {
        Ok(request) => next.run(request).await,
        Err(refused) => refused.into_response(),
    };
    if (response.status().is_client_error() || response.status().is_server_error())
        && !is_json(&response)
    {
        response = reshape(response, &path, config.max_body).await;
    }
    secure(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_the_servers_own_names_are_hosts() {
        let names = vec!["zendure.lan".to_string()];
        let local = listen("127.0.0.1:8080");
        for (host, ok) in [
            ("127.0.0.1:8080", true),
            ("127.0.0.1", true),
            ("localhost:8080", true),
            ("LOCALHOST.:8080", true),
            ("zendure.lan", true),
            ("Zendure.LAN:443", true),
            ("127.0.0.1:9090", false),
            ("127.0.0.2:8080", false),
            ("localhost:9090", false),
            ("evil.example:8080", false),
            ("evil.example", false),
            ("zendure.lan.evil.example", false),
            ("127.0.0.1:80x", false),
            ("[::1]:8080", false),
            ("", false),
        ] {
            assert_eq!(host_allowed(host, local, &names), ok, "{host}");
        }
        let all = listen("0.0.0.0:8080");
        assert!(host_allowed("192.168.1.20:8080", all, &names));
        assert!(!host_allowed("192.168.1.20:8081", all, &names));
        assert!(!host_allowed("evil.example:8080", all, &names));
        let v6 = listen("[::1]:8080");
        assert!(host_allowed("[::1]:8080", v6, &names));
        assert!(!host_allowed("[::2]:8080", v6, &names));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    fn status(method: Method, pairs: &[(&'static str, &'static str)]) -> Option<StatusCode> {
        write_allowed(&method, &headers(pairs))
            .err()
            .map(|e| e.into_response().status())
    }

    #[test]
    fn writes_come_from_the_page_or_from_no_page() {
        let json = ("content-type", "application/json");
        let host = ("host", "127.0.0.1:8080");
        // The page itself, and a program (no Origin, no Sec-Fetch-Site).
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            assert_eq!(
                status(
                    method.clone(),
                    &[
                        json,
                        host,
                        ("origin", "http://127.0.0.1:8080"),
                        ("sec-fetch-site", "same-origin")
                    ]
                ),
                None
            );
            assert_eq!(status(method, &[json, host]), None);
        }
        assert_eq!(
            status(
                Method::POST,
                &[("content-type", "application/json; charset=utf-8"), host]
            ),
            None
        );
        // Reads are not writes.
        assert_eq!(
            status(Method::GET, &[host, ("sec-fetch-site", "cross-site")]),
            None
        );
        for (pairs, code) in [
            (vec![json, host, ("sec-fetch-site", "cross-site")], 403),
            // Another port of the same machine is the same site, not origin.
            (vec![json, host, ("sec-fetch-site", "same-site")], 403),
            (vec![json, host, ("origin", "http://127.0.0.1:9090")], 403),
            (vec![json, host, ("origin", "null")], 403),
            (vec![json, ("origin", "http://127.0.0.1:8080")], 403),
            (vec![host, ("content-type", "text/plain")], 415),
            (vec![host], 415),
            (
                vec![host, ("content-type", "application/x-www-form-urlencoded")],
                415,
            ),
        ] {
            assert_eq!(
                status(Method::POST, &pairs).map(|s| s.as_u16()),
                Some(code),
                "{pairs:?}"
            );
        }
    }
}
