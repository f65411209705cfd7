//! The controller's core, pure: events in (a meter reading, a device
//! reading, a schedule, a tick of the control clock, a write's outcome,
//! the stop signal), effects out (write this command, log this line, save
//! this schedule, replace the status file, report this event). The loop in
//! `zendure::controller` only gathers events and carries out effects.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::zendure::core::energy::{HourRecord, Integrator};
use crate::zendure::core::law::{
    self, Command, Decision, DevicePower, Inputs, Lag, LagSeen, Limits, Moment, Reason, Response,
    Sample, Tuning, WriteLog, WriteReason,
};
use crate::zendure::core::manual::{Override, OverrideRequest};
use crate::zendure::core::prices::tariff::PriceSlot;
use crate::zendure::core::reading::DeviceReading;
use crate::zendure::core::report::{DeviceSample, MeterSample, PosterStats, StatusEvent};
use crate::zendure::core::schedule::{self, FetchError, Schedule, ScheduleValue};
use crate::zendure::core::status::{
    CommandStatus, DeviceStatus, EnergyStatus, MeterStatus, NextChange, ScheduleStatus, StatusDoc,
    TodayEnergy, WrittenStatus,
};

/// The fixed parts of the controller, from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    pub tuning: Tuning,
    pub meter_lag: Option<Duration>,
    pub interval: Duration,
    pub http_timeout: Duration,
    pub zone: Tz,
    pub sn: Option<String>,
    pub schedule_source: String,
    pub meter: String,
    pub device: String,
    pub pid: u32,
}

impl Settings {
    /// How much meter and device history the law and the lag estimate see.
    fn history(&self) -> Duration {
        self.tuning.meter_timeout * 4
    }
}

/// Something that happened.
#[derive(Debug)]
pub enum Event {
    Started {
        wall: DateTime<Utc>,
    },
    /// A meter reading (net grid W) taken at `at`, or why there is none.
    Meter {
        at: Moment,
        wall: DateTime<Utc>,
        result: Result<i32, String>,
    },
    Device {
        at: Moment,
        wall: DateTime<Utc>,
        result: Result<DeviceReading, String>,
    },
    /// The schedule source was read.
    Fetched(Result<Schedule, FetchError>),
    /// The last good copy, read at start.
    Saved(Schedule),
    /// Time to decide.
    Tick {
        at: Moment,
        wall: DateTime<Utc>,
    },
    Written {
        at: Moment,
        wall: DateTime<Utc>,
        command: Command,
        result: Result<(), String>,
    },
    /// What the poster has done so far (only when reports are posted).
    Reports(PosterStats),
    /// The owner overrides the schedule, or goes back to it.
    Override {
        wall: DateTime<Utc>,
        request: OverrideRequest,
    },
    /// The override in force when the controller last stopped, read at
    /// start.
    Restored(Override),
    /// The day's price slots (only with `zendure.prices`), to cost energy.
    Prices(Vec<PriceSlot>),
    /// SIGTERM/SIGINT: command 0 W and stop.
    Stopping {
        at: Moment,
        wall: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Something to do.
#[derive(Debug)]
pub enum Effect {
    Write {
        sn: String,
        command: Command,
    },
    Log {
        level: Level,
        message: String,
    },
    SaveSchedule(Schedule),
    /// Keep the override (none: there is none) across a restart.
    SaveOverride(Option<Override>),
    Status(Box<StatusDoc>),
    Report(Reported),
}

#[derive(Debug)]
pub enum Reported {
    Status(StatusEvent),
    Meter(MeterSample),
    Device(DeviceSample),
    Energy(HourRecord),
}

/// The schedule in use, where it came from, and the source's last error:
/// one value, so they cannot disagree.
#[derive(Debug)]
enum ScheduleIn {
    /// No schedule at all: 0 W.
    None { error: Option<String> },
    /// Read from the source at the last refresh.
    Fresh(Schedule),
    /// The source is down or invalid (or not read yet): the kept copy.
    LastGood {
        schedule: Schedule,
        error: Option<String>,
    },
}

impl ScheduleIn {
    fn schedule(&self) -> Option<&Schedule> {
        match self {
            ScheduleIn::None { .. } => None,
            ScheduleIn::Fresh(schedule) | ScheduleIn::LastGood { schedule, .. } => Some(schedule),
        }
    }

    fn error(&self) -> Option<&String> {
        match self {
            ScheduleIn::Fresh(_) => None,
            ScheduleIn::None { error } | ScheduleIn::LastGood { error, .. } => error.as_ref(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            ScheduleIn::Fresh(_) => "fresh",
            ScheduleIn::LastGood { .. } => "last_good",
            ScheduleIn::None { .. } => "none",
        }
    }
}

/// The device as last heard from: one value, so a reading and an error
/// cannot disagree.
#[derive(Debug)]
enum DeviceIn {
    /// Not read yet.
    Unread,
    /// The last read answered.
    Answering {
        read: Moment,
        reading: DeviceReading,
    },
    /// The last read or write failed; `kept` is the last reading when only
    /// a write failed.
    Failing {
        error: String,
        kept: Option<(Moment, DeviceReading)>,
    },
}

impl DeviceIn {
    fn reading(&self) -> Option<(Moment, &DeviceReading)> {
        match self {
            DeviceIn::Unread | DeviceIn::Failing { kept: None, .. } => None,
            DeviceIn::Answering { read, reading }
            | DeviceIn::Failing {
                kept: Some((read, reading)),
                ..
            } => Some((*read, reading)),
        }
    }

    fn error(&self) -> Option<&String> {
        match self {
            DeviceIn::Failing { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The controller's state.
pub struct Core {
    settings: Settings,
    schedule: ScheduleIn,
    samples: VecDeque<Sample>,
    meter_error: Option<String>,
    power: VecDeque<DevicePower>,
    device: DeviceIn,
    writes: WriteLog,
    written_wall: Option<DateTime<Utc>>,
    write_count: u64,
    direction_changes: u64,
    lag: Lag,
    /// A lag seen once, waiting for a second change of command to confirm
    /// it (`law::confirm_lag`).
    lag_pending: Option<LagSeen>,
    /// When the command changed, over the history the lag estimate sees.
    changes: VecDeque<Moment>,
    /// The device's wake-up and settle times, and the change of command
    /// they were last learnt from.
    response: Response,
    learnt_from: Option<Moment>,
    value: Option<ScheduleValue>,
    manual: Option<Override>,
    decision: Option<Decision>,
    status_error: bool,
    stopping: bool,
    reports: Option<PosterStats>,
    /// The energy account, from the start on.
    energy: Option<(DateTime<Utc>, Integrator)>,
}

impl Core {
    pub fn new(settings: Settings) -> Core {
        let lag = settings.meter_lag.map_or(Lag::Unknown, |lag| Lag::Known {
            lag,
            uncertainty: settings.interval,
        });
        let response = Response::assumed(&settings.tuning);
        Core {
            response,
            learnt_from: None,
            settings,
            schedule: ScheduleIn::None { error: None },
            samples: VecDeque::new(),
            meter_error: None,
            power: VecDeque::new(),
            device: DeviceIn::Unread,
            writes: WriteLog::default(),
            written_wall: None,
            write_count: 0,
            direction_changes: 0,
            lag,
            lag_pending: None,
            changes: VecDeque::new(),
            value: None,
            manual: None,
            decision: None,
            status_error: false,
            stopping: false,
            reports: None,
            energy: None,
        }
    }

    /// The last control step's decision, if there was one.
    pub fn decision(&self) -> Option<Decision> {
        self.decision
    }

    pub fn writes(&self) -> WriteLog {
        self.writes
    }

    /// Tells the core the status file could (not) be written, so it logs
    /// the failure once.
    pub fn status_written(&mut self, result: Result<(), String>) -> Vec<Effect> {
        let failed = result.is_err();
        let mut out = Vec::new();
        if failed != self.status_error {
            out.push(match result {
                Err(e) => log(Level::Warn, format!("cannot write the status file: {e}")),
                Ok(()) => log(Level::Info, "the status file is written again".into()),
            });
        }
        self.status_error = failed;
        out
    }

    pub fn step(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Started { wall } => {
                // Start time and process id tell this run's hours from an
                // earlier or later run's of the same hour.
                let run = format!(
                    "{:x}-{:x}",
                    wall.timestamp_nanos_opt().unwrap_or(wall.timestamp()),
                    self.settings.pid
                );
                self.energy = Some((
                    wall,
                    Integrator::new(run, self.settings.zone, self.settings.tuning.meter_timeout),
                ));
                vec![
                    log(
                        Level::Info,
                        format!(
                            "started: device {}, meter {}, schedule {}",
                            self.settings.device,
                            self.settings.meter,
                            self.settings.schedule_source
                        ),
                    ),
                    Effect::Report(Reported::Status(StatusEvent::Start {
                        timestamp: wall.timestamp(),
                    })),
                ]
            }
            Event::Saved(schedule) => {
                self.schedule = ScheduleIn::LastGood {
                    schedule,
                    error: None,
                };
                vec![log(
                    Level::Info,
                    "using the last good schedule until the source is read".into(),
                )]
            }
            Event::Fetched(result) => self.fetched(result),
            Event::Override { wall, request } => self.overridden(wall, request),
            Event::Restored(manual) => {
                self.manual = Some(manual);
                vec![log(Level::Info, format!("override kept: {manual}"))]
            }
            Event::Meter { at, wall, result } => self.metered(at, wall, result),
            Event::Device { at, wall, result } => self.device_read(at, wall, result),
            Event::Tick { at, wall } => self.tick(at, wall),
            Event::Reports(stats) => {
                self.reports = Some(stats);
                Vec::new()
            }
            Event::Prices(slots) => {
                if let Some((_, energy)) = &mut self.energy {
                    energy.set_prices(slots);
                }
                Vec::new()
            }
            Event::Written {
                at,
                wall,
                command,
                result,
            } => self.written(at, wall, command, result),
            Event::Stopping { at, wall } => {
                self.stopping = true;
                let mut out = Vec::new();
                match self.sn() {
                    Some(sn) => {
                        out.push(log(Level::Info, "stopping: commanding 0 W".into()));
                        out.push(Effect::Write {
                            sn,
                            command: Command::Idle,
                        });
                    }
                    None => {
                        out.push(log(
                            Level::Warn,
                            "stopping without a word to the device: it was never read".into(),
                        ));
                        out.push(Effect::Status(Box::new(self.status(at, wall))));
                    }
                }
                // The hour in progress goes partial: a later run adds to it.
                out.extend(self.energy_records(|energy| energy.stop(wall)));
                out.push(Effect::Report(Reported::Status(StatusEvent::Stop {
                    timestamp: wall.timestamp(),
                })));
                out
            }
        }
    }

    fn fetched(&mut self, result: Result<Schedule, FetchError>) -> Vec<Effect> {
        let mut out = Vec::new();
        let previous = std::mem::replace(&mut self.schedule, ScheduleIn::None { error: None });
        self.schedule = match result {
            Ok(schedule) => {
                let changed = previous.schedule() != Some(&schedule);
                if !matches!(previous, ScheduleIn::Fresh(_)) {
                    out.push(log(
                        Level::Info,
                        format!(
                            "schedule read from {} ({} entries)",
                            self.settings.schedule_source,
                            schedule.entries().count()
                        ),
                    ));
                } else if changed {
                    out.push(log(
                        Level::Info,
                        format!("schedule changed ({} entries)", schedule.entries().count()),
                    ));
                }
                if changed {
                    out.push(Effect::SaveSchedule(schedule.clone()));
                }
                ScheduleIn::Fresh(schedule)
            }
            Err(e) => {
                let error = Some(e.to_string());
                let first = previous.error().is_none();
                let was = previous.name();
                let next = match previous {
                    ScheduleIn::Fresh(schedule) | ScheduleIn::LastGood { schedule, .. } => {
                        ScheduleIn::LastGood { schedule, error }
                    }
                    ScheduleIn::None { .. } => ScheduleIn::None { error },
                };
                if first || next.name() != was {
                    let fallback = match next {
                        ScheduleIn::LastGood { .. } => "using the last good schedule",
                        _ => "no schedule: 0 W",
                    };
                    out.push(log(Level::Warn, format!("schedule {e}; {fallback}")));
                }
                next
            }
        };
        out
    }

    fn metered(
        &mut self,
        at: Moment,
        wall: DateTime<Utc>,
        result: Result<i32, String>,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        match result {
            Ok(grid_w) => {
                if let Some(e) = self.meter_error.take() {
                    out.push(log(Level::Info, format!("meter reads again (was: {e})")));
                }
                // A meter that sends less often than we ask repeats its
                // last reading with its own time: keep it once.
                if self.samples.back().is_none_or(|s| s.taken < at) {
                    self.samples.push_back(Sample { taken: at, grid_w });
                    if let Some((_, energy)) = &mut self.energy {
                        energy.meter(wall, grid_w);
                    }
                    out.push(Effect::Report(Reported::Meter(MeterSample {
                        timestamp: wall.timestamp(),
                        total_power: grid_w,
                    })));
                }
            }
            Err(e) => {
                if self.meter_error.is_none() {
                    out.push(log(Level::Warn, format!("meter: {e}")));
                }
                self.meter_error = Some(e);
            }
        }
        out
    }

    fn device_read(
        &mut self,
        at: Moment,
        wall: DateTime<Utc>,
        result: Result<DeviceReading, String>,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        match result {
            Ok(reading) => {
                if let Some(e) = self.device.error() {
                    out.push(log(Level::Info, format!("device answers again (was: {e})")));
                }
                self.power.push_back(reading.power(at));
                if let Some((_, energy)) = &mut self.energy {
                    energy.device(wall, reading.ac_w, reading.battery_w);
                }
                out.push(Effect::Report(Reported::Device(
                    reading.payload.sample(wall.timestamp()),
                )));
                self.device = DeviceIn::Answering { read: at, reading };
            }
            Err(error) => {
                if self.device.error().is_none() {
                    out.push(log(Level::Error, format!("device: {error}")));
                }
                self.device = DeviceIn::Failing { error, kept: None };
            }
        }
        out
    }

    fn sn(&self) -> Option<String> {
        self.settings
            .sn
            .clone()
            .or_else(|| self.device.reading().and_then(|(_, r)| r.sn.clone()))
    }

    fn prune(&mut self, now: Moment) {
        let keep_after = now.minus(self.settings.history());
        while self.samples.front().is_some_and(|s| s.taken < keep_after) {
            self.samples.pop_front();
        }
        // Keep one power reading older than the window: it says what the
        // device did at the window's start.
        while self.power.len() > 1 && self.power[1].at < keep_after {
            self.power.pop_front();
        }
        while self.changes.front().is_some_and(|&c| c < keep_after) {
            self.changes.pop_front();
        }
    }

    fn update_lag(&mut self) -> Option<Effect> {
        if self.settings.meter_lag.is_some() {
            return None;
        }
        let step = self.settings.interval.min(Duration::from_secs(1));
        let previous = match self.lag {
            Lag::Known { lag, .. } => Some(lag),
            Lag::Unknown => None,
        };
        let seen = law::estimate_lag(
            self.samples.make_contiguous(),
            self.power.make_contiguous(),
            (
                self.changes.make_contiguous(),
                self.response.settle * 2 + self.settings.interval,
            ),
            previous,
            (self.settings.tuning.meter_timeout, step),
            self.settings
                .tuning
                .hysteresis_w
                .max(self.settings.tuning.deadband_w * 2),
        )?;
        let (confirmed, pending) = law::confirm_lag(previous, self.lag_pending, seen, step * 2);
        self.lag_pending = pending;
        let estimate = confirmed?;
        self.lag = Lag::Known {
            lag: estimate,
            uncertainty: self.settings.interval + step,
        };
        let moved = previous.is_none_or(|p| p.abs_diff(estimate) > self.settings.interval + step);
        moved.then(|| {
            log(
                Level::Info,
                format!("meter lag estimated at {:.1} s", estimate.as_secs_f64()),
            )
        })
    }

    /// Learns from the device's answer to the last change of command, once.
    fn update_response(&mut self) -> Option<Effect> {
        let (changed, _) = self.writes.change?;
        if self.learnt_from == Some(changed) {
            return None;
        }
        let seen = law::observe_response(
            self.power.make_contiguous(),
            &self.writes,
            &self.settings.tuning,
        )?;
        self.learnt_from = Some(changed);
        let before = self.response;
        self.response = before.learn(seen);
        let moved = self.response.settle.abs_diff(before.settle) > self.settings.interval;
        moved.then(|| {
            log(
                Level::Info,
                format!(
                    "device settles {:.1} s after a write (wakes after {:.1} s)",
                    self.response.settle.as_secs_f64(),
                    self.response.wake.as_secs_f64()
                ),
            )
        })
    }

    fn tick(&mut self, at: Moment, wall: DateTime<Utc>) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.stopping {
            return out;
        }
        self.prune(at);
        out.extend(self.energy_records(|energy| energy.finished(wall)));
        out.extend(self.update_lag());
        out.extend(self.update_response());
        let empty = Schedule::default();
        let schedule = self.schedule.schedule().unwrap_or(&empty);
        let in_force = schedule::value_at_instant(schedule, &self.settings.zone, wall);
        if self.value != Some(in_force.value) {
            out.push(log(
                Level::Info,
                format!(
                    "schedule value now {} ({})",
                    in_force.value,
                    in_force
                        .key
                        .as_ref()
                        .map_or("no entry".to_string(), |k| format!("key {k}"))
                ),
            ));
            self.value = Some(in_force.value);
        }
        if let Some(manual) = self.manual.filter(|m| m.ended(wall)) {
            out.extend(self.put_override(wall, None, format!("override ended: {manual}")));
        }
        let value = self.manual.map_or(in_force.value, |m| m.value());
        let device = self
            .device
            .reading()
            .map(|(read, reading)| reading.state(read));
        let decision = law::decide(&Inputs {
            now: at,
            value,
            samples: self.samples.make_contiguous(),
            power: self.power.make_contiguous(),
            device,
            writes: self.writes,
            limits: self.settings.limits,
            tuning: self.settings.tuning,
            lag: self.lag,
            response: self.response,
        });
        if self.decision.map(|d| d.reason) != Some(decision.reason) {
            let level = match decision.reason {
                Reason::MeterLost | Reason::DeviceUnknown => Level::Warn,
                _ => Level::Info,
            };
            out.push(log(
                level,
                format!("control: {}", reason_text(decision.reason)),
            ));
        }
        self.decision = Some(decision);
        if let Some((command, why)) = decision.write {
            match self.sn() {
                Some(sn) => out.push(Effect::Write { sn, command }),
                None => out.push(log(
                    Level::Error,
                    "the device reports no serial number; set zendure.sn".into(),
                )),
            }
            if why == WriteReason::DirectionHold {
                out.push(log(
                    Level::Info,
                    format!(
                        "idling until min_direction_change allows {}",
                        decision.target
                    ),
                ));
            }
        }
        out.push(Effect::Status(Box::new(self.status(at, wall))));
        out
    }

    fn written(
        &mut self,
        at: Moment,
        wall: DateTime<Utc>,
        command: Command,
        result: Result<(), String>,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        match result {
            Ok(()) => {
                let old = self.writes.last_command();
                if let (Some(new), Some((before, _))) = (command.ac_mode(), self.writes.ac_mode)
                    && new != before
                {
                    self.direction_changes += 1;
                }
                self.writes = self.writes.record(at, command);
                self.written_wall = Some(wall);
                self.write_count += 1;
                // The status shows the write now, not a cycle later.
                out.push(Effect::Status(Box::new(self.status(at, wall))));
                if old != Some(command) {
                    self.changes.push_back(at);
                    out.push(log(Level::Info, format!("wrote {command}")));
                    out.push(Effect::Report(Reported::Status(StatusEvent::Change {
                        old: old.map_or(0, Command::setpoint_w),
                        new: command.setpoint_w(),
                        timestamp: wall.timestamp(),
                    })));
                }
            }
            Err(error) => {
                if self.device.error().is_none() {
                    out.push(log(Level::Error, format!("device: {error}")));
                }
                let kept = self
                    .device
                    .reading()
                    .map(|(read, reading)| (read, reading.clone()));
                self.device = DeviceIn::Failing { error, kept };
                // The final status says the stop even when the 0 W failed.
                if self.stopping {
                    out.push(Effect::Status(Box::new(self.status(at, wall))));
                }
            }
        }
        out
    }

    /// The hour records `take` hands over, to be reported.
    fn energy_records(
        &mut self,
        take: impl FnOnce(&mut Integrator) -> Vec<HourRecord>,
    ) -> Vec<Effect> {
        self.energy.as_mut().map_or(Vec::new(), |(_, energy)| {
            take(energy)
                .into_iter()
                .map(|hour| Effect::Report(Reported::Energy(hour)))
                .collect()
        })
    }

    /// The status document for this moment.
    pub fn status(&self, at: Moment, wall: DateTime<Utc>) -> StatusDoc {
        let age = |then: Moment| at.since(then).as_secs_f64();
        let empty = Schedule::default();
        let schedule = self.schedule.schedule().unwrap_or(&empty);
        let in_force = schedule::value_at_instant(schedule, &self.settings.zone, wall);
        let next = schedule::next_change(schedule, schedule::local(&self.settings.zone, wall));
        let report = self.device.reading();
        let (lag, lag_s) = match (self.lag, self.settings.meter_lag) {
            (Lag::Known { lag, .. }, Some(_)) => ("configured", Some(lag.as_secs_f64())),
            (Lag::Known { lag, .. }, None) => ("estimated", Some(lag.as_secs_f64())),
            (Lag::Unknown, _) => ("unknown", None),
        };
        let decision = self.decision;
        StatusDoc {
            pid: self.settings.pid,
            updated: wall,
            alive_within_s: (self.settings.interval * 3 + self.settings.http_timeout * 3)
                .as_secs_f64(),
            schedule: ScheduleStatus {
                source: self.settings.schedule_source.clone(),
                state: self.schedule.name().to_string(),
                error: self.schedule.error().cloned(),
                value: in_force.value.to_json(),
                key: in_force.key.map(|k| k.to_string()),
                since: Some(in_force.since),
                next_change: next.map(|c| NextChange {
                    at: c.at,
                    value: c.value.to_json(),
                }),
            },
            meter: MeterStatus {
                meter: self.settings.meter.clone(),
                grid_w: self.samples.back().map(|s| s.grid_w),
                age_s: self.samples.back().map(|s| age(s.taken)),
                error: self.meter_error.clone(),
                lag: lag.to_string(),
                lag_s,
            },
            device: DeviceStatus {
                device: self.settings.device.clone(),
                sn: self.sn(),
                product: report.and_then(|(_, r)| r.product.clone()),
                error: self.device.error().cloned(),
                age_s: report.map(|(read, _)| age(read)),
                soc_pct: report.map(|(_, r)| r.soc_pct),
                ac_w: report.map(|(_, r)| r.ac_w),
                battery_w: report.map(|(_, r)| r.battery_w),
                ac_mode: report.and_then(|(_, r)| r.ac_mode),
                input_limit_w: report.and_then(|(_, r)| r.input_limit_w),
                output_limit_w: report.and_then(|(_, r)| r.output_limit_w),
                charge_max_w: report.and_then(|(_, r)| r.charge_max_w),
                discharge_max_w: report.and_then(|(_, r)| r.discharge_max_w),
                pack_state: report.and_then(|(_, r)| r.pack_state),
                cut_off: report
                    .and_then(|(_, r)| r.cut_off)
                    .map(|c| c.text().to_string()),
                packs: report.map(|(_, r)| r.packs.clone()).unwrap_or_default(),
            },
            target: match decision {
                Some(d) if !self.stopping => d.target,
                _ => Command::Idle,
            }
            .into(),
            reason: match decision {
                _ if self.stopping => "stopped: 0 W".to_string(),
                Some(d) => reason_text(d.reason).to_string(),
                None => "starting".to_string(),
            },
            stopped: self.stopping,
            last_command: self.writes.last_command().zip(self.written_wall).map(
                |(command, written)| WrittenStatus {
                    command: CommandStatus::from(command),
                    written,
                },
            ),
            writes: self.write_count,
            direction_changes: self.direction_changes,
            reports: self.reports.clone(),
            manual: self.manual,
            energy: self.energy.as_ref().map(|(since, energy)| {
                let (today, money) = energy.today(wall);
                let cents = |eur: f64| (eur * 100.0).round() / 100.0;
                EnergyStatus {
                    since: *since,
                    total: energy.total().kwh(),
                    today: TodayEnergy {
                        date: wall.with_timezone(&self.settings.zone).date_naive(),
                        kwh: today.kwh(),
                        cost_eur: money.map(|m| cents(m.cost_eur)),
                        saving_eur: money.map(|m| cents(m.saving_eur())),
                    },
                }
            }),
        }
    }

    fn overridden(&mut self, wall: DateTime<Utc>, request: OverrideRequest) -> Vec<Effect> {
        let empty = Schedule::default();
        let schedule = self.schedule.schedule().unwrap_or(&empty);
        let next = schedule::next_change_instant(schedule, &self.settings.zone, wall);
        let manual = request.resolve(wall, next.map(|c| c.at));
        if manual == self.manual {
            return Vec::new();
        }
        let said = match manual {
            Some(m) => format!("override: {m}"),
            None => "override cleared: following the schedule".to_string(),
        };
        self.put_override(wall, manual, said)
    }

    /// Puts `manual` in force (`None`: the schedule again), saved, and told
    /// to the server, which shows the override in force: a new one replaces
    /// the one before, an end or a clear ends it.
    fn put_override(
        &mut self,
        wall: DateTime<Utc>,
        manual: Option<Override>,
        said: String,
    ) -> Vec<Effect> {
        let before = std::mem::replace(&mut self.manual, manual);
        let timestamp = wall.timestamp();
        let event = match (manual, before) {
            (Some(manual), _) => Some(StatusEvent::Override { manual, timestamp }),
            (None, ended) => ended.map(|manual| StatusEvent::OverrideEnded { manual, timestamp }),
        };
        let mut out = vec![log(Level::Info, said), Effect::SaveOverride(manual)];
        out.extend(event.map(|e| Effect::Report(Reported::Status(e))));
        out
    }
}

pub fn log(level: Level, message: String) -> Effect {
    Effect::Log { level, message }
}

pub fn reason_text(reason: Reason) -> &'static str {
    match reason {
        Reason::Fixed => "fixed power from the schedule",
        Reason::Tracking => "tracking the grid to zero",
        Reason::Deadband => "grid within the deadband",
        Reason::WaitingForMeter => "waiting for a meter reading after the last change",
        Reason::MeterLost => "meter silent for meter_timeout: 0 W",
        Reason::SocMin => "below min_soc: no discharging",
        Reason::SocMax => "above max_soc: no charging",
        Reason::DeviceUnknown => "device not read",
    }
}

#[cfg(test)]
pub(crate) mod tests;
