//! The long-running controller: `run` gathers events (meter and device
//! readings, schedules, ticks of the control clock, the stop signal) for
//! the pure `core::controller::Core` and carries out the effects it
//! returns; one shutdown signal reaches every task.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::zendure::config::{ScheduleSource, ZendureConfig};
use crate::zendure::core::controller::log;
pub use crate::zendure::core::controller::{Core, Effect, Event, Level, Reported, Settings};
use crate::zendure::core::law::Moment;
use crate::zendure::core::manual::OverrideRequest;
use crate::zendure::core::prices::config::PriceConfig;
use crate::zendure::core::prices::tariff::{self, PriceSlot};
use crate::zendure::core::report::{PosterStats, Reporter};
use crate::zendure::core::schedule::{FetchError, Schedule};
use crate::zendure::core::status::StatusDoc;
use crate::zendure::io::device::Device;
use crate::zendure::io::http::Http;
use crate::zendure::io::meter::Meter;
use crate::zendure::io::prices::{self, PriceCache};
use crate::zendure::io::source;

impl Settings {
    /// The settings a config file gives.
    pub fn new(config: &ZendureConfig, meter: String, device: String) -> Settings {
        Settings {
            limits: config.limits,
            tuning: config.tuning(),
            meter_lag: config.timings.meter_lag,
            interval: config.timings.interval,
            http_timeout: config.timings.http_timeout,
            zone: config.time_zone,
            sn: config.sn.clone(),
            schedule_source: config.schedule.to_string(),
            meter,
            device,
            pid: std::process::id(),
        }
    }
}

/// What the loop needs to run.
pub struct Parts<D, M, R> {
    pub device: D,
    pub meter: M,
    pub reporter: R,
    pub http: Http,
    pub source: ScheduleSource,
    pub schedule_refresh: Duration,
    pub saved_schedule: std::path::PathBuf,
    pub status_file: std::path::PathBuf,
    /// The poster's counts, for the status file.
    pub report_stats: Option<watch::Receiver<PosterStats>>,
    /// Keeps an override across a restart.
    pub override_file: std::path::PathBuf,
    /// The owner's overrides (from Home Assistant); never closed-over
    /// when nobody sends any.
    pub overrides: mpsc::Receiver<OverrideRequest>,
    /// Each status document as written, for Home Assistant.
    pub statuses: Option<watch::Sender<Option<Box<StatusDoc>>>>,
    /// The config when it has `zendure.prices`: today's prices cost the
    /// energy account (fetched at the start and after each local midnight).
    pub prices: Option<ZendureConfig>,
}

/// The controller's clocks: monotonic for the law, wall time derived from
/// it so a paused test clock moves both.
#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
    wall_start: DateTime<Utc>,
}

impl Clock {
    fn moment(&self, at: Instant) -> Moment {
        Moment(at.saturating_duration_since(self.start))
    }

    fn wall(&self, at: Instant) -> DateTime<Utc> {
        self.wall_start
            + TimeDelta::from_std(at.saturating_duration_since(self.start))
                .unwrap_or(TimeDelta::zero())
    }
}

/// Runs until `shutdown` turns true, then commands 0 W and returns.
pub async fn run<D, M, R>(
    settings: Settings,
    mut parts: Parts<D, M, R>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()>
where
    D: Device,
    M: Meter,
    R: Reporter,
{
    let clock = Clock {
        start: Instant::now(),
        wall_start: Utc::now(),
    };
    let interval = settings.interval;
    let mut core = Core::new(settings);
    let mut effects = core.step(Event::Started {
        wall: clock.wall(Instant::now()),
    });
    match source::load_saved(&parts.saved_schedule) {
        Ok(Some(saved)) => effects.extend(core.step(Event::Saved(saved))),
        Ok(None) => {}
        Err(e) => effects.push(log(Level::Warn, format!("{e:#}; ignored"))),
    }
    match crate::zendure::io::status::load_override(&parts.override_file) {
        Ok(Some(manual)) => effects.extend(core.step(Event::Restored(manual))),
        Ok(None) => {}
        Err(e) => effects.push(log(Level::Warn, format!("{e:#}; ignored"))),
    }
    // The first control step already follows the schedule.
    effects.extend(core.step(Event::Fetched(
        source::fetch(&parts.source, &parts.http).await,
    )));
    execute(&mut core, &mut parts, clock, effects).await;

    let (schedules_tx, mut schedules) = mpsc::channel(1);
    let refresher = tokio::spawn(refresh_schedule(
        parts.source.clone(),
        parts.http.clone(),
        parts.schedule_refresh,
        schedules_tx,
        shutdown.clone(),
    ));

    // The sender lives as long as the loop, so the channel never closes
    // when no prices are fetched.
    let (prices_tx, mut prices) = mpsc::channel(1);
    let pricer = parts.prices.take().and_then(|config| {
        let price_config = config.prices.clone()?;
        Some(tokio::spawn(refresh_prices(
            config,
            price_config,
            parts.schedule_refresh,
            prices_tx.clone(),
            shutdown.clone(),
        )))
    });

    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            Some(fetched) = schedules.recv() => {
                let effects = core.step(Event::Fetched(fetched));
                execute(&mut core, &mut parts, clock, effects).await;
            }
            Some(request) = parts.overrides.recv() => {
                let wall = clock.wall(Instant::now());
                let effects = core.step(Event::Override { wall, request });
                execute(&mut core, &mut parts, clock, effects).await;
                // Obeyed now, not an interval later.
                ticker.reset_immediately();
            }
            Some(slots) = prices.recv() => {
                let effects = core.step(Event::Prices(slots));
                execute(&mut core, &mut parts, clock, effects).await;
            }
            _ = ticker.tick() => {
                let effects = cycle(&mut core, &mut parts, clock).await;
                execute(&mut core, &mut parts, clock, effects).await;
            }
        }
    }
    let now = Instant::now();
    let effects = core.step(Event::Stopping {
        at: clock.moment(now),
        wall: clock.wall(now),
    });
    execute(&mut core, &mut parts, clock, effects).await;
    let _ = refresher.await;
    if let Some(pricer) = pricer {
        let _ = pricer.await;
    }
    drop(prices_tx);
    Ok(())
}

/// One control cycle: read the meter and the device together, then decide.
async fn cycle<D: Device, M: Meter, R: Reporter>(
    core: &mut Core,
    parts: &mut Parts<D, M, R>,
    clock: Clock,
) -> Vec<Effect> {
    // The device's reading is dated when it was asked for, so it never
    // comes after the meter reading of the same cycle: paired with the
    // previous cycle's device power instead, every device change looks
    // like a lag of one interval and the lag estimate wanders.
    let asked = Instant::now();
    let (meter, device) = tokio::join!(parts.meter.read(), parts.device.report());
    let done = Instant::now();
    let mut effects = Vec::new();
    let meter_event = match meter {
        Ok(reading) => Event::Meter {
            at: clock.moment(reading.taken),
            wall: clock.wall(reading.taken),
            result: Ok(reading.grid_w),
        },
        Err(e) => Event::Meter {
            at: clock.moment(done),
            wall: clock.wall(done),
            result: Err(format!("{e:#}")),
        },
    };
    effects.extend(core.step(meter_event));
    effects.extend(core.step(Event::Device {
        at: clock.moment(asked),
        wall: clock.wall(asked),
        result: device.map_err(|e| format!("{e:#}")),
    }));
    if let Some(stats) = &parts.report_stats {
        let stats = stats.borrow().clone();
        effects.extend(core.step(Event::Reports(stats)));
    }
    effects.extend(core.step(Event::Tick {
        at: clock.moment(done),
        wall: clock.wall(done),
    }));
    effects
}

/// Carries out effects; a write's outcome goes back into the core, and so
/// do the effects that follow from it.
async fn execute<D: Device, M: Meter, R: Reporter>(
    core: &mut Core,
    parts: &mut Parts<D, M, R>,
    clock: Clock,
    effects: Vec<Effect>,
) {
    let mut queue: VecDeque<Effect> = effects.into();
    while let Some(effect) = queue.pop_front() {
        match effect {
            Effect::Write { sn, command } => {
                let result = parts.device.write(&sn, command).await;
                let now = Instant::now();
                let follow = core.step(Event::Written {
                    at: clock.moment(now),
                    wall: clock.wall(now),
                    command,
                    result: result.map_err(|e| format!("{e:#}")),
                });
                // What follows from the write comes before what was queued
                // after it (a stop report stays last).
                for effect in follow.into_iter().rev() {
                    queue.push_front(effect);
                }
            }
            Effect::Log { level, message } => match level {
                Level::Info => tracing::info!("{message}"),
                Level::Warn => tracing::warn!("{message}"),
                Level::Error => tracing::error!("{message}"),
            },
            Effect::SaveSchedule(schedule) => {
                if let Err(e) = source::save(&parts.saved_schedule, &schedule) {
                    tracing::warn!("{e:#}");
                }
            }
            Effect::SaveOverride(manual) => {
                let path = &parts.override_file;
                if let Err(e) = crate::zendure::io::status::save_override(path, manual.as_ref()) {
                    tracing::warn!("{e:#}");
                }
            }
            Effect::Status(doc) => {
                let result = crate::zendure::io::status::write(&parts.status_file, &doc)
                    .map_err(|e| format!("{e:#}"));
                queue.extend(core.status_written(result));
                if let Some(statuses) = &parts.statuses {
                    statuses.send_replace(Some(doc));
                }
            }
            Effect::Report(item) => match item {
                Reported::Status(e) => parts.reporter.status(e),
                Reported::Meter(s) => parts.reporter.meter(s),
                Reported::Device(s) => parts.reporter.device(s),
                Reported::Energy(h) => parts.reporter.energy(h),
            },
        }
    }
}

/// Resolves once the shutdown signal is given (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Today's price slots for the energy account: at the start and after each
/// local midnight; a failed fetch is retried every `retry` (and said once).
async fn refresh_prices(
    config: ZendureConfig,
    price_config: PriceConfig,
    retry: Duration,
    out: mpsc::Sender<Vec<PriceSlot>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cache = PriceCache::default();
    let mut failing = false;
    loop {
        let now = Utc::now();
        let zone = config.time_zone;
        let date = now.with_timezone(&zone).date_naive();
        let (_, end) = tariff::day_bounds(date, zone);
        let wait = match prices::whole_day_slots(&config, &price_config, date, &cache).await {
            Ok(slots) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("energy: prices read again");
                }
                if out.send(slots).await.is_err() {
                    return;
                }
                (end - now + TimeDelta::seconds(1))
                    .to_std()
                    .unwrap_or(retry)
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!("energy: no prices, today is not costed: {e:#}");
                }
                retry
            }
        };
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Reads the schedule source every `refresh`, until shutdown.
async fn refresh_schedule(
    source: ScheduleSource,
    http: Http,
    refresh: Duration,
    out: mpsc::Sender<Result<Schedule, FetchError>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let fetched = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            fetched = async {
                tokio::time::sleep(refresh).await;
                source::fetch(&source, &http).await
            } => fetched,
        };
        if out.send(fetched).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
