//! `zcell-sched status`: the five slots, the zone, the batteries and the
//! last run, as text or one JSON document. Whatever cannot be read (the
//! GX, the BMS) is shown as unavailable with the reason, beside everything
//! that could; the exit code says what failed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

use crate::exit::{Exit, Failure, causes};
use crate::tz;
use crate::zcell::bms;
use crate::zcell::dess::{self, Mode, WindowIndex, WindowValues, Writer};
use crate::zcell::gx::{self, GxOptions, Settings};
use crate::zcell::planner;
use crate::zcell::record::{self, BatteryRecord, RunRecord};
use crate::zcell::report::{self, GxView};
use crate::zcell::settings::StatusSettings;
use crate::zcell::slot::{SlotIndex, SlotValues};

pub async fn status(settings: StatusSettings) -> Result<(), Failure> {
    let owned = &settings.owned;
    let (last, record_failure) = match record::read(&settings.status_file) {
        Ok(last) if settings.now.is_some() => (last.map(RunRecord::on_its_own_clock), None),
        Ok(last) => (last, None),
        Err(e) => (None, Some(Failure::new(Exit::Usage, e))),
    };
    let (gx_view, gx_failure) = match read_gx(&settings.gx, settings.writer).await {
        Ok(read) => (Ok(read), None),
        Err(e) => (Err(causes(&e)), Some(Failure::new(Exit::Gx, e))),
    };
    let gx_zone = gx_view
        .as_ref()
        .ok()
        .and_then(|read| tz::parse_zone(&read.zone).ok());
    // The zone given (--tz or the config's) wins; else the GX's; else the
    // one the last run planned in.
    let zone: Option<Tz> = settings.tz.or(gx_zone).or_else(|| {
        last.as_ref()
            .and_then(|r| r.zone.as_deref())
            .and_then(|z| tz::parse_zone(z).ok())
    });
    let clock = match (settings.now, zone) {
        (Some(local), Some(tz)) => local
            .and_local_timezone(tz)
            .earliest()
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
        (Some(local), None) => local.and_utc(),
        (None, _) => Utc::now(),
    };
    let now: Option<DateTime<Tz>> = zone.map(|tz| clock.with_timezone(&tz));
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
        let (zone_name, slots) = match &gx_view {
            Ok(read) => (Some(read.zone.clone()), Some(&read.slots)),
            Err(_) => (None, None),
        };
        let doc = json!({
            "zone": zone_name.or_else(|| zone.map(|z| z.name().to_string())),
            "now": now.map(|n| n.naive_local()),
            "owned": owned.iter().map(SlotIndex::get).collect::<Vec<_>>(),
            "slots": slots.map(|slots| slots.iter().map(|(s, v)| json!({
                "slot": s.get(), "owned": owned.contains(*s),
                "values": record::Values::from(*v), "text": report::slot_values(v),
            })).collect::<Vec<_>>()),
            "gx_error": gx_view.as_ref().err(),
            "batteries": batteries.iter().map(|(b, p)| BatteryRecord::new(b, *p, None)).collect::<Vec<_>>(),
            "bms_error": bms_failure.as_ref().map(|f| f.to_string()),
            "last_run": last,
            "last_run_error": record_failure.as_ref().map(|f| f.to_string()),
            "stale": last.as_ref().is_none_or(|r| r.is_stale(clock)),
            "dess": gx_view.as_ref().ok().and_then(|read| read.dess.as_ref()).map(|d| {
                // The GX follows the lowest-numbered of all 48 windows.
                let mut all = d.windows.clone();
                all.extend(&d.foreign);
                let active = now.and_then(|n| dess::active_at(&all, n.timezone(), clock));
                let window = |(i, v): (&WindowIndex, &WindowValues)| json!({
                    "window": i.get(),
                    "values": v,
                    "text": zone.map(|tz| report::window_values(v, tz)),
                    "active": active == Some(*i),
                });
                json!({
                    "mode": d.mode,
                    "windows": d.windows.iter().map(window).collect::<Vec<_>>(),
                    "foreign_windows": dess::set_windows(&d.foreign).iter().map(window).collect::<Vec<_>>(),
                    "warning": zone.and_then(|tz| d.warning(tz)),
                })
            }),
        });
        println!("{doc:#}");
    } else {
        let view = match &gx_view {
            Ok(read) => GxView::Read {
                zone: &read.zone,
                slots: &read.slots,
            },
            Err(reason) => GxView::Unavailable { reason },
        };
        let last = match &record_failure {
            Some(f) => Err(f.to_string()),
            None => Ok(last.as_ref()),
        };
        print!(
            "{}",
            report::status(view, clock, now, owned, &batteries, last)
        );
        if let Some(d) = gx_view.as_ref().ok().and_then(|read| read.dess.as_ref()) {
            print!(
                "\n{}",
                report::dess_status(d.mode, &d.windows, &d.foreign, now)
            );
            if let Some(warning) = zone.and_then(|tz| d.warning(tz)) {
                println!("warning: {warning}");
            }
        }
    }
    // The GX first: it is what status is for; then the record, then the BMS.
    match gx_failure.or(record_failure).or(bms_failure) {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// What `status` reads of the GX.
struct GxRead {
    /// The time zone setting.
    zone: String,
    /// All five slots.
    slots: BTreeMap<SlotIndex, SlotValues>,
    /// With the Dynamic ESS writer.
    dess: Option<DessRead>,
}

struct DessRead {
    /// None: firmware without Dynamic ESS.
    mode: Option<i64>,
    windows: BTreeMap<WindowIndex, WindowValues>,
    /// Those zcell-sched does not own.
    foreign: BTreeMap<WindowIndex, WindowValues>,
}

impl DessRead {
    /// In Local mode, set windows zcell-sched does not own act when its own
    /// do not; in Auto they are VRM's plan.
    fn warning(&self, tz: Tz) -> Option<String> {
        (self.mode == Some(Mode::Local.raw()))
            .then(|| report::foreign_warning(&self.foreign, tz))
            .flatten()
    }
}

async fn read_gx(options: &GxOptions, writer: Writer) -> anyhow::Result<GxRead> {
    let gx = gx::connect(options).await?;
    let zone = gx.time_zone().await?;
    let all: Vec<SlotIndex> = SlotIndex::all().collect();
    let slots = gx.read_slots(&all).await?;
    let dess = match writer {
        Writer::Slots => None,
        Writer::Dess => {
            let mode = gx::dess::read_mode(&gx).await?;
            let (windows, foreign) = match mode {
                Some(_) => (
                    gx::dess::read_windows(&gx).await?,
                    gx::dess::read_foreign(&gx).await?,
                ),
                None => Default::default(),
            };
            Some(DessRead {
                mode,
                windows,
                foreign,
            })
        }
    };
    Ok(GxRead { zone, slots, dess })
}
