//! `zcell-sched status`: the five slots, the zone, the batteries and the
//! last run, as text or one JSON document.

use chrono::Utc;
use serde_json::json;

use crate::exit::{Exit, ExitContext, Failure};
use crate::tz;
use crate::zcell::bms;
use crate::zcell::dess::Writer;
use crate::zcell::gx::{self, Settings};
use crate::zcell::planner;
use crate::zcell::record::{self, BatteryRecord};
use crate::zcell::report;
use crate::zcell::settings::StatusSettings;
use crate::zcell::slot::SlotIndex;

pub async fn status(settings: StatusSettings) -> Result<(), Failure> {
    let owned = &settings.owned;
    let last = record::read(&settings.status_file).or_exit(Exit::Usage)?;
    let gx = gx::connect(&settings.gx).await.or_exit(Exit::Gx)?;
    let name = gx.time_zone().await.or_exit(Exit::Gx)?;
    let all: Vec<SlotIndex> = SlotIndex::all().collect();
    let slots = gx.read_slots(&all).await.or_exit(Exit::Gx)?;
    let zone = settings.tz.or_else(|| tz::parse_zone(&name).ok());
    let clock = Utc::now();
    let now = zone.map(|tz| clock.with_timezone(&tz));
    // With the Dynamic ESS writer: its mode (None: firmware without it) and
    // the owned windows.
    let dess = match settings.writer {
        Writer::Slots => None,
        Writer::Dess => {
            let mode = gx::dess::read_mode(&gx).await.or_exit(Exit::Gx)?;
            let windows = match mode {
                Some(_) => gx::dess::read_windows(&gx).await.or_exit(Exit::Gx)?,
                None => Default::default(),
            };
            Some((mode, windows))
        }
    };
    let mut bms_failure = None;
    let mut batteries = Vec::new();
    if let (Some(addr), Some(now)) = (settings.bms.as_ref(), now) {
        match bms::fetch(addr, settings.fetch).await {
            Ok(s) => {
                batteries = s
                    .batteries
                    .into_iter()
                    .map(|b| {
                        let p = planner::predict(now, &b);
                        (b, p)
                    })
                    .collect();
            }
            Err(e) => bms_failure = Some(Failure::new(Exit::Fallback, e)),
        }
    }
    if settings.json {
        let doc = json!({
            "zone": name,
            "now": now.map(|n| n.naive_local()),
            "owned": owned.iter().map(SlotIndex::get).collect::<Vec<_>>(),
            "slots": slots.iter().map(|(s, v)| json!({
                "slot": s.get(), "owned": owned.contains(*s),
                "values": record::Values::from(*v), "text": report::slot_values(v),
            })).collect::<Vec<_>>(),
            "batteries": batteries.iter().map(|(b, p)| BatteryRecord::new(b, *p, None)).collect::<Vec<_>>(),
            "bms_error": bms_failure.as_ref().map(|f| f.to_string()),
            "last_run": last,
            "stale": last.as_ref().is_none_or(|r| r.is_stale(clock)),
            "dess": dess.as_ref().map(|(mode, windows)| {
                let active = now.and_then(|n| {
                    crate::zcell::dess::active_at(windows, n.timezone(), clock)
                });
                json!({
                    "mode": mode,
                    "windows": windows.iter().map(|(i, v)| json!({
                        "window": i.get(),
                        "values": v,
                        "text": zone.map(|tz| report::window_values(v, tz)),
                        "active": active == Some(*i),
                    })).collect::<Vec<_>>(),
                })
            }),
        });
        println!("{doc:#}");
    } else {
        print!(
            "{}",
            report::status(&name, clock, now, &slots, owned, &batteries, last.as_ref())
        );
        if let Some((mode, windows)) = &dess {
            print!("\n{}", report::dess_status(*mode, windows, now));
        }
    }
    bms_failure.map_or(Ok(()), Err)
}
