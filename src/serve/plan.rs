//! `POST /api/schedule/plan`: a price plan for a day, into the server's
//! schedule. Every call is a write (the token applies): even a proposal
//! costs a price fetch, though each day's prices are fetched once an hour
//! at most. The body `{"date": "YYYY-MM-DD" | "today" | "tomorrow", "soc":
//! PERCENT, "save": false}` (all optional) answers the proposal, which the
//! page shows before anything is saved: every slot with its prices, value
//! and expected SoC, the entries, the expected saving, and the ETag of the
//! schedule it was made from. `"save": true` with `If-Match: <that ETag>`
//! plans again and writes it (412 if the schedule changed meanwhile). The
//! plan's entries are listed beside the schedule file; the owner's are
//! never touched.

use std::path::Path;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::reply::{ApiError, ApiResult, json_ok, parse_json, with_etag};
use super::state::{Shared, authorize, off_thread};
use super::store::unix;
use crate::zendure::config::{self, ZendureConfig};
use crate::zendure::core::prices::tariff::PlanDay;
use crate::zendure::io::prices;
use crate::zendure::io::schedule_file::Stale;

/// The `zendure` config that plans need, or why the server cannot plan.
pub fn planning(config_file: Option<&Path>) -> Result<ZendureConfig, String> {
    let path = config_file.ok_or("no --config file: price plans need its zendure.prices")?;
    let zendure = config::load(Some(path)).map_err(|e| format!("{e:#}"))?;
    match zendure.prices {
        Some(_) => Ok(zendure),
        None => Err("zendure.prices: missing (the price source and the battery's capacity)".into()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanRequest {
    date: Option<String>,
    soc: Option<f64>,
    #[serde(default)]
    save: bool,
}

pub async fn plan_post(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let request: PlanRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PlanRequest::default()
    } else {
        serde_json::from_value(parse_json(&body)?)
            .map_err(|e| ApiError::bad(format!("plan request: {e}")))?
    };
    // Even a proposal fetches prices upstream and costs the server: a write.
    authorize(&state, &headers, true)?;
    let zendure = state.planning.as_ref().map_err(|why| {
        ApiError::private(StatusCode::CONFLICT, format!("price plans are off: {why}"))
    })?;
    let day = PlanDay::parse(request.date.as_deref().unwrap_or("today"))
        .map_err(|e| ApiError::bad(format!("date: {e:#}")))?;
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if request.save && if_match.is_none() {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "saving a plan needs If-Match with the ETag its proposal answered",
        ));
    }
    // A save is an edit: one at a time, checked against what was proposed.
    let _edit = match request.save {
        true => Some(state.schedule_edit.lock().await),
        false => None,
    };
    let current = match if_match.filter(|_| request.save) {
        Some(if_match) => state.schedule.read_if(if_match),
        None => state.schedule.read().map(Ok),
    }
    .map_err(ApiError::internal)?
    .map_err(|Stale { etag }| {
        ApiError::stale(
            etag,
            "the schedule changed since the plan was proposed; nothing was written: propose again",
        )
    })?;
    let existing = current
        .schedule()
        .map_err(ApiError::internal)?
        .map_err(|errors| {
            let said: Vec<String> = errors.iter().map(ToString::to_string).collect();
            ApiError::new(
                StatusCode::CONFLICT,
                format!("the schedule file is invalid: {}", said.join("; ")),
            )
        })?;
    let owned = state.schedule.plan_entries().map_err(ApiError::internal)?;
    let now = Utc::now();
    let proposal = prices::propose(
        zendure,
        day,
        request.soc,
        &existing,
        &owned,
        now,
        &state.prices,
    )
    .await
    .map_err(|e| ApiError::private(StatusCode::BAD_GATEWAY, format!("{e:#}")))?;
    let mut doc = proposal.to_json(zendure.time_zone);
    doc["success"] = json!(true);
    let etag = if request.save {
        let etag = state
            .schedule
            .write_plan(&owned, &proposal)
            .map_err(ApiError::internal)?;
        // Kept beside the day's realised saving (`GET /api/energy`).
        let (date, saving) = (proposal.date, proposal.expected.saving_eur);
        off_thread(&state, move |state| {
            let mut store = state.locked_store();
            store
                .insert_planned(date, saving, unix(now))
                .map_err(ApiError::internal)
        })
        .await??;
        etag
    } else {
        current.etag
    };
    doc["written"] = json!(request.save);
    doc["etag"] = json!(etag);
    Ok(with_etag(json_ok(doc), &etag))
}
