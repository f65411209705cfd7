//! What every route shares: the server's state, who may read and write,
//! and the pool that keeps slow work off the runtime's thread.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::http::{HeaderMap, StatusCode, header};

use super::config::ServeConfig;
use super::reply::ApiError;
use super::store::Store;
use crate::zendure::config::ZendureConfig;
use crate::zendure::io::prices::PriceCache;
use crate::zendure::io::schedule_file::ScheduleFile;

pub struct AppState {
    pub config: ServeConfig,
    pub schedule: ScheduleFile,
    /// One schedule edit at a time: read, check, write.
    pub schedule_edit: tokio::sync::Mutex<()>,
    pub store: Mutex<Store>,
    /// Work done off the runtime's thread (resolution, database reads and
    /// writes), at most this many at a time.
    pub blocking: tokio::sync::Semaphore,
    pub token: Option<String>,
    /// The `zendure` config for price plans, or why there is none.
    pub planning: Result<ZendureConfig, String>,
    pub prices: PriceCache,
}

impl AppState {
    /// The database; a route that panicked holding it does not lock the
    /// others out.
    pub fn locked_store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub type Shared = Arc<AppState>;

/// Constant time, so the answer's timing does not leak the token.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub(super) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    write: bool,
) -> Result<(), ApiError> {
    let Some(token) = &state.token else {
        return Ok(());
    };
    if !write && state.config.open_reads {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if same(given.trim(), token) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong token")),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this needs `Authorization: Bearer <token>` (the token in the server's token_file)",
        )),
    }
}

/// Runs `work` on the blocking pool, at most `AppState::blocking` at once,
/// so the runtime's one thread stays free for the page and its assets
/// while a schedule is resolved or the database read.
pub(super) async fn off_thread<T: Send + 'static>(
    state: &Shared,
    work: impl FnOnce(&AppState) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = state
        .blocking
        .acquire()
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    let state = state.clone();
    tokio::task::spawn_blocking(move || work(&state))
        .await
        .map_err(|e| ApiError::internal(e.into()))
}
