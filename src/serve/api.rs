//! The HTTP routes: the reference-compatible schedule, status and data
//! APIs, the clean REST schedule API, and the page.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::IntoResponse;
use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Value, json};

use super::reply::{ApiError, ApiResult, json_ok, parse_json, redact, with_etag};
use super::schedule;
use super::state::{AppState, Shared, authorize, off_thread};
use super::store::{DataKind, Posted, summary, unix};
use crate::zendure::core::schedule::Resolver;
use crate::zendure::io::schedule_file::{EntryError, Parsed, Stale};

fn now_unix() -> f64 {
    unix(Utc::now())
}

fn local_now(zone: Tz) -> chrono::NaiveDateTime {
    Utc::now().with_timezone(&zone).naive_local()
}

// ---- the clean REST schedule API ----

pub(super) async fn schedule_get(State(state): State<Shared>, headers: HeaderMap) -> ApiResult {
    authorize(&state, &headers, false)?;
    let current = state.schedule.read().map_err(ApiError::internal)?;
    let body = if current.bytes.is_empty() {
        b"{}".to_vec()
    } else {
        current.bytes.clone()
    };
    let response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    Ok(with_etag(response, &current.etag))
}

pub(super) async fn schedule_put(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    authorize(&state, &headers, true)?;
    let Some(if_match) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "PUT /api/schedule needs If-Match with the ETag of the schedule it edits (GET it first)",
        ));
    };
    let doc = parse_json(&body)?;
    if let Some(key) = schedule::repeated_key(&body) {
        return Err(ApiError::invalid(vec![EntryError {
            key: Some(key),
            error: "appears more than once: each key may be given once".into(),
        }]));
    }
    let _edit = state.schedule_edit.lock().await;
    if let Err(Stale { etag }) = state
        .schedule
        .read_if(if_match)
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::stale(
            etag,
            "the schedule changed since it was read; nothing was written: reload it and apply the edit again",
        ));
    }
    let etag = state
        .schedule
        .write_document(&doc)
        .map_err(ApiError::internal)?
        .map_err(ApiError::invalid)?;
    Ok(with_etag(
        json_ok(json!({"success": true, "etag": etag})),
        &etag,
    ))
}

// ---- the reference schedule API ----

#[derive(Deserialize)]
pub(super) struct DateQuery {
    date: Option<String>,
}

pub(super) async fn reference_schedule(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<DateQuery>,
    body: Bytes,
) -> ApiResult {
    match method {
        // HEAD as GET; the body is left off on the way out.
        Method::GET | Method::HEAD => {
            authorize(&state, &headers, false)?;
            let now = local_now(state.config.time_zone);
            // As the reference: a missing or malformed date means today.
            // Eight digits exactly: chrono alone reads "2026112" as 2 Nov.
            let date = query
                .date
                .as_deref()
                .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
                .unwrap_or(now.date());
            off_thread(&state, move |state| {
                let parsed = state.schedule.parsed().map_err(ApiError::internal)?;
                let (schedule, resolver) = parsed
                    .valid
                    .as_ref()
                    .map_err(|errors| ApiError::invalid(errors.clone()))?;
                let day = schedule::reference_day(schedule, resolver, date, now);
                Ok(with_etag(json_ok(day), &parsed.etag))
            })
            .await?
        }
        Method::PUT | Method::POST => {
            authorize(&state, &headers, true)?;
            let input = parse_json(&body)?;
            let key = input.get("key").and_then(|k| match k {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let (Some(key), Some(value)) = (key, input.get("value")) else {
                return Err(ApiError::bad("missing key or value"));
            };
            let original = match input.get("originalKey") {
                None | Some(Value::Null) => None,
                Some(Value::String(original)) => Some(original.as_str()),
                Some(other) => {
                    return Err(ApiError::bad(format!(
                        "`originalKey` must be the key string of the entry to rename, not {other}"
                    )));
                }
            };
            let value = schedule::loose_value(value);
            edit(&state, |doc| {
                if let Some(original) = original.filter(|o| *o != key) {
                    doc.remove(original);
                }
                doc.insert(key.clone(), value.clone());
            })
            .await
        }
        Method::DELETE => {
            authorize(&state, &headers, true)?;
            let input = parse_json(&body)?;
            let Some(key) = input.get("key").and_then(Value::as_str) else {
                return Err(ApiError::bad("missing key"));
            };
            edit(&state, |doc| {
                doc.remove(key);
            })
            .await
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET, HEAD, PUT, POST or DELETE",
        )),
    }
}

/// Applies one reference-style edit to the stored schedule, validates the
/// result (naming any bad entry) and writes it.
async fn edit(
    state: &AppState,
    change: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> ApiResult {
    let _edit = state.schedule_edit.lock().await;
    let etag = state
        .schedule
        .edit(change)
        .map_err(ApiError::internal)?
        .map_err(ApiError::invalid)?;
    Ok(with_etag(json_ok(json!({"success": true})), &etag))
}

// ---- status and data ----

async fn store_posted(state: &Shared, posted: Result<Posted, anyhow::Error>) -> ApiResult {
    let posted = posted.map_err(|e| ApiError::bad(format!("{e:#}")))?;
    let (size, max) = (posted.stored_bytes(), state.config.max_stored_body);
    if size > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body to store is {size} bytes, more than serve.max_stored_body ({max})"),
        ));
    }
    off_thread(state, move |state| {
        let mut store = state.locked_store();
        store
            .insert(&posted, now_unix())
            .map_err(ApiError::internal)
    })
    .await??;
    Ok(json_ok(json!({"success": true})))
}

pub(super) async fn status_post(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    authorize(&state, &headers, true)?;
    let doc = parse_json(&body)?;
    store_posted(
        &state,
        Posted::event(doc, now_unix(), state.config.time_zone),
    )
    .await
}

/// The stored schedule, validated and indexed, or why it cannot be used
/// (without its path: the status is for any reader).
fn stored_schedule(state: &AppState) -> Result<Arc<Parsed>, String> {
    let parsed = state
        .schedule
        .parsed()
        .map_err(|e| redact(&format!("{e:#}")))?;
    if let Err(errors) = &parsed.valid {
        return Err(errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "));
    }
    Ok(parsed)
}

fn resolver(parsed: &Arc<Parsed>) -> Option<&Resolver> {
    parsed.valid.as_ref().ok().map(|(_, r)| r)
}

pub(super) async fn status_get(State(state): State<Shared>, headers: HeaderMap) -> ApiResult {
    authorize(&state, &headers, false)?;
    off_thread(&state, status).await?
}

fn status(state: &AppState) -> ApiResult {
    let parsed = stored_schedule(state);
    let in_force = parsed
        .as_ref()
        .ok()
        .and_then(resolver)
        .map(|r| schedule::in_force(r, state.config.time_zone, Utc::now()));
    let store = state.locked_store();
    let latest = store.latest().map_err(ApiError::internal)?;
    let recent = store.events(20, None).map_err(ApiError::internal)?;
    let live = summary(&latest, in_force, now_unix(), state.config.alive_after);
    Ok(json_ok(json!({
        "success": true,
        "live": live,
        "events": recent,
        "schedule_error": parsed.err(),
        "time_zone": state.config.time_zone.name(),
    })))
}

#[derive(Deserialize)]
pub(super) struct LimitQuery {
    limit: Option<u32>,
    /// `all` for every type of event; otherwise (the default) the changes.
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The reference status API's GET: the last `limit` changes and when the
/// controller was last heard from.
pub(super) async fn reference_status_get(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<LimitQuery>,
) -> ApiResult {
    authorize(&state, &headers, false)?;
    // As the reference: the last change by default, the last ten of any
    // type with `?type=all`.
    let all = query.kind.as_deref() == Some("all");
    let limit = query
        .limit
        .unwrap_or(if all { 10 } else { 1 })
        .clamp(1, 1000);
    off_thread(&state, move |state| reference_status(state, limit, all)).await?
}

fn reference_status(state: &AppState, limit: u32, all: bool) -> ApiResult {
    let store = state.locked_store();
    let changes = store
        .events(limit, (!all).then_some("change"))
        .map_err(ApiError::internal)?;
    let latest = store.latest().map_err(ApiError::internal)?;
    let now = now_unix();
    let running = latest
        .last_start
        .map(|start| latest.stopped_at.unwrap_or(now) - start);
    Ok(json_ok(json!({
        "success": true,
        "lastChanges": changes,
        "lastAlive": latest.last_event.map(|(t, _)| t),
        "runningTime": running.unwrap_or(0.0),
        "entryCount": store.count("events").map_err(ApiError::internal)?,
    })))
}

#[derive(Deserialize)]
pub(super) struct TypeQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub(super) async fn data_post(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<TypeQuery>,
    body: Bytes,
) -> ApiResult {
    authorize(&state, &headers, true)?;
    if query.kind.as_deref() == Some(super::energy::TYPE) {
        return super::energy::post(&state, &body).await;
    }
    let kind =
        DataKind::from_query(query.kind.as_deref()).map_err(|e| ApiError::bad(format!("{e:#}")))?;
    let doc = parse_json(&body)?;
    store_posted(
        &state,
        Posted::data(doc, kind, now_unix(), state.config.time_zone),
    )
    .await
}

pub(super) async fn reference_data(
    state: State<Shared>,
    method: Method,
    headers: HeaderMap,
    query: Query<TypeQuery>,
    body: Bytes,
) -> ApiResult {
    match method {
        Method::POST | Method::PUT => data_post(state, headers, query, body).await,
        Method::GET | Method::HEAD => {
            authorize(&state, &headers, false)?;
            let kind = DataKind::from_query(query.kind.as_deref())
                .map_err(|e| ApiError::bad(format!("{e:#}")))?
                .ok_or_else(|| ApiError::bad("give ?type=zendure or ?type=zendure_p1"))?;
            off_thread(&state, move |state| reference_sample(state, kind)).await?
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "this path takes the controller's samples (POST) and gives back the last one (GET)",
        )),
    }
}

/// The reference's read of a kind: the last sample posted, as posted.
fn reference_sample(state: &AppState, kind: DataKind) -> ApiResult {
    let store = state.locked_store();
    match store
        .last_sample(kind, state.config.time_zone)
        .map_err(ApiError::internal)?
    {
        Some((received, data)) => Ok(json_ok(json!({
            "success": true,
            "data": data,
            "file": kind.reference_file(),
            "timestamp": received as i64,
        }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no {} sample has been posted yet", kind.reference_file()),
        )),
    }
}

#[derive(Deserialize)]
pub(super) struct HoursQuery {
    hours: Option<f64>,
}

pub(super) async fn data_get(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HoursQuery>,
) -> ApiResult {
    authorize(&state, &headers, false)?;
    let hours = query.hours.unwrap_or(24.0).clamp(0.01, 24.0 * 31.0);
    off_thread(&state, move |state| data(state, hours)).await?
}

fn data(state: &AppState, hours: f64) -> ApiResult {
    let end = Utc::now();
    let start = end - chrono::TimeDelta::milliseconds((hours * 3_600_000.0) as i64);
    let (now, from) = (unix(end), unix(start));
    let steps = stored_schedule(state)
        .ok()
        .as_ref()
        .and_then(resolver)
        .map(|r| schedule::steps(r, state.config.time_zone, start, end))
        .unwrap_or_default();
    let store = state.locked_store();
    let mut series = store.series(from).map_err(ApiError::internal)?;
    series["schedule"] = json!(steps);
    series["now"] = json!(now);
    series["from"] = json!(from);
    // The page draws the home's clock, whatever the phone's zone.
    series["time_zone"] = json!(state.config.time_zone.name());
    Ok(json_ok(series))
}
