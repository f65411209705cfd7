//! HTTP helpers both systems' adapters use.

use std::time::Duration;

/// reqwest's own message wraps the cause (refused, reset) in layers of
/// "error sending request"; log lines want the cause.
pub fn brief(e: &reqwest::Error, limit: Duration) -> String {
    let root = std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
        .last()
        .map(|e| e.to_string())
        .unwrap_or_default();
    if e.is_timeout() {
        format!("timed out after {limit:?}")
    } else if e.is_connect() {
        format!("cannot connect: {root}")
    } else {
        root
    }
}
