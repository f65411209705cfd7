//! How a route answers: JSON as the reference's clients read it, refusals
//! with their status and the bad entries, and errors cut of local paths
//! and secrets.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::zendure::io::schedule_file::EntryError;

/// A refused request: its status, what went wrong, and the bad entries.
pub struct ApiError {
    status: StatusCode,
    pub(super) message: String,
    entries: Vec<EntryError>,
    etag: Option<String>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            entries: Vec::new(),
            etag: None,
        }
    }

    pub(super) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn invalid(entries: Vec<EntryError>) -> ApiError {
        let message = entries
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("invalid schedule: {message}"),
            entries,
            etag: None,
        }
    }

    /// A 412 carrying the schedule's current ETag.
    pub(super) fn stale(etag: String, message: impl Into<String>) -> ApiError {
        ApiError {
            etag: Some(etag),
            ..ApiError::new(StatusCode::PRECONDITION_FAILED, message)
        }
    }

    /// A failure of the server's own: told in full in its log, answered
    /// without local paths.
    pub(super) fn internal(error: anyhow::Error) -> ApiError {
        ApiError::private(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}"))
    }

    /// An error whose words may name local files or URLs with secrets
    /// (`?securityToken=`): in full in the server's log, answered redacted.
    pub(super) fn private(status: StatusCode, message: String) -> ApiError {
        crate::log(&message);
        ApiError::new(status, redact(&message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // `success`/`error` as the reference answers, so its clients read it.
        let body = json!({
            "success": false,
            "error": self.message,
            "errors": self.entries,
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(etag) = self.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        response
    }
}

pub(super) type ApiResult = Result<Response, ApiError>;

/// `text` with each URL's user, query and fragment left off and each
/// absolute path cut to its file name: what an error may show a client.
pub fn redact(text: &str) -> String {
    let ends = |c: char| c.is_whitespace() || "\"'`()<>,;".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !ends(c)) {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let len = after.find(ends).unwrap_or(after.len());
        let word = &after[..len];
        // A colon or full stop after a URL or path is the sentence's.
        let (word, trail) = word.split_at(word.trim_end_matches([':', '.']).len());
        match word.split_once("://") {
            Some((scheme, place)) => {
                let place = place.rsplit_once('@').map_or(place, |(_, p)| p);
                let kept = place.split(['?', '#']).next().unwrap_or_default();
                out.push_str(&format!("{scheme}://{kept}"));
                if kept.len() < place.len() {
                    out.push_str("?…");
                }
            }
            None if word.starts_with('/') => {
                out.push_str(word.rsplit('/').next().unwrap_or_default())
            }
            None => out.push_str(word),
        }
        out.push_str(trail);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

pub(super) fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))
}

pub(super) fn json_ok(value: Value) -> Response {
    axum::Json(value).into_response()
}

pub(super) fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn errors_show_no_secrets_and_no_local_paths() {
        for (text, shown) in [
            (
                "prices from https://web-api.tp.entsoe.eu/api?securityToken=abc123&in=NL: timed out",
                "prices from https://web-api.tp.entsoe.eu/api?…: timed out",
            ),
            (
                "error sending request for url (http://user:pw@127.0.0.1:9/p?key=s#f)",
                "error sending request for url (http://127.0.0.1:9/p?…)",
            ),
            (
                "config file /etc/zcell-sched/config.json: zendure.prices: missing",
                "config file config.json: zendure.prices: missing",
            ),
            (
                "cannot read /var/lib/zcell-sched/schedule.json: Permission denied (os error 13)",
                "cannot read schedule.json: Permission denied (os error 13)",
            ),
            ("plain words stay", "plain words stay"),
        ] {
            assert_eq!(redact(text), shown);
            assert!(!redact(text).contains("abc123"));
        }
    }
}
