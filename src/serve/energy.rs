//! The energy account: the controller posts each run's hours (`POST
//! /api/data?type=zendure_energy`, or the reference data path with that
//! type), the server keeps them with the hour's prices when `zendure.prices`
//! is configured, and `GET /api/energy?days=N` answers the last days, each
//! run's hours added up, grouped by the home's local day, with cost,
//! realised saving and the price planner's expected saving.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::reply::{ApiError, ApiResult, json_ok};
use super::state::{AppState, Shared, authorize, off_thread};
use super::store::{MAX_AHEAD_S, unix};
use crate::log;
use crate::zendure::core::energy::{self, HourRecord};
use crate::zendure::core::prices::tariff;
use crate::zendure::io::prices;

/// The data type the controller posts its hours as.
pub const TYPE: &str = "zendure_energy";

/// Days the API answers at most.
const MAX_DAYS: u32 = 31;

/// The hour's buy and sell prices, when prices are configured and the
/// source has the day (fetched at most once an hour per day, see
/// `PriceCache`); a price source that fails leaves the hour unpriced.
async fn hour_prices(state: &AppState, hour: i64) -> Option<(f64, f64)> {
    let zendure = state.planning.as_ref().ok()?;
    let price_config = zendure.prices.as_ref()?;
    let date = energy::local_day(hour, zendure.time_zone);
    match prices::whole_day_slots(zendure, price_config, date, &state.prices).await {
        Ok(slots) => energy::hour_prices(&slots, hour),
        Err(e) => {
            log(&format!("energy: hour left unpriced: {e:#}"));
            None
        }
    }
}

/// Takes one run's hour (already authorised as a write).
pub async fn post(state: &Shared, body: &Bytes) -> ApiResult {
    let record: HourRecord =
        serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("energy hour: {e}")))?;
    record
        .check()
        .map_err(|e| ApiError::bad(format!("energy hour: {e}")))?;
    let now = Utc::now();
    if record.hour as f64 > now.timestamp() as f64 + MAX_AHEAD_S {
        return Err(ApiError::bad(format!(
            "energy hour {} is ahead of the server's clock",
            record.hour
        )));
    }
    let prices = hour_prices(state, record.hour).await;
    let received = unix(now);
    off_thread(state, move |state| {
        let mut store = state.locked_store();
        store
            .insert_hour(&record, prices, received)
            .map_err(ApiError::internal)
    })
    .await??;
    Ok(json_ok(json!({"success": true})))
}

#[derive(Deserialize)]
pub struct DaysQuery {
    days: Option<u32>,
}

/// `GET /api/energy?days=N` (default 7, at most 31): today and the days
/// before it.
pub async fn get(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<DaysQuery>,
) -> ApiResult {
    authorize(&state, &headers, false)?;
    let days = query.days.unwrap_or(7).clamp(1, MAX_DAYS);
    off_thread(&state, move |state| answer(state, days, Utc::now())).await?
}

fn answer(state: &AppState, days: u32, now: DateTime<Utc>) -> ApiResult {
    let zone = state.config.time_zone;
    let today = now.with_timezone(&zone).date_naive();
    let first = today - chrono::Days::new(u64::from(days - 1));
    let (from, _) = tariff::day_bounds(first, zone);
    let store = state.locked_store();
    let (hours, planned) = store
        .energy(from.timestamp(), first)
        .map_err(ApiError::internal)?;
    Ok(json_ok(json!({
        "success": true,
        "time_zone": zone.name(),
        "priced": state.planning.as_ref().is_ok_and(|z| z.prices.is_some()),
        "days": energy::days(&hours, zone, &planned),
    })))
}
