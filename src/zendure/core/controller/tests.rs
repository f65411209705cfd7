//! `Core::step` driven directly with generated event sequences: whatever
//! the meter, the device, the schedule and the writes' outcomes do, the
//! effects keep the write-rate rules and the limits, and the stop comes
//! last.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::zendure::core::law::{AcMode, Limits, Tuning};
use crate::zendure::core::report::Payload;

/// Settings for tests: an 800 W device, 10 s between writes, 60 s between
/// direction changes.
pub(crate) fn settings() -> Settings {
    Settings {
        limits: Limits {
            max_charge_w: 800,
            max_discharge_w: 800,
            min_soc_pct: 10,
            max_soc_pct: 100,
        },
        tuning: Tuning {
            min_write_interval: Duration::from_secs(10),
            min_direction_change: Duration::from_secs(60),
            reassert: Duration::from_secs(30),
            meter_timeout: Duration::from_secs(8),
            deadband_w: 25,
            step_w: 20,
            hysteresis_w: 60,
        },
        meter_lag: Some(Duration::ZERO),
        interval: Duration::from_secs(2),
        http_timeout: Duration::from_secs(1),
        zone: chrono_tz::UTC,
        sn: None,
        schedule_source: "test".into(),
        meter: "fake".into(),
        device: "fake".into(),
        pid: 1,
    }
}

fn reading(soc_pct: u8, ac_w: i32) -> DeviceReading {
    DeviceReading {
        sn: Some("SN1".into()),
        soc_pct,
        ac_w,
        battery_w: i64::from(ac_w),
        ac_mode: None,
        input_limit_w: None,
        output_limit_w: None,
        charge_max_w: None,
        discharge_max_w: None,
        pack_state: None,
        cut_off: None,
        packs: Vec::new(),
        payload: Payload::default(),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Wait(u64),
    Meter(Result<i32, ()>),
    Device(Result<(u8, i32), ()>),
    Schedule(Result<ScheduleValue, ()>),
    Tick,
    /// Whether the writes from now on succeed.
    Writes(bool),
}

fn value() -> impl Strategy<Value = ScheduleValue> {
    prop_oneof![
        (-1500i32..1500).prop_map(ScheduleValue::Watts),
        Just(ScheduleValue::NetZero),
        Just(ScheduleValue::NetZeroPlus),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..20_000).prop_map(Op::Wait),
        3 => prop_oneof![9 => (-3000i32..3000).prop_map(Ok), 1 => Just(Err(()))].prop_map(Op::Meter),
        3 => prop_oneof![
            9 => (0u8..=100, -1000i32..1000).prop_map(Ok),
            1 => Just(Err(())),
        ]
        .prop_map(Op::Device),
        1 => prop_oneof![4 => value().prop_map(Ok), 1 => Just(Err(()))].prop_map(Op::Schedule),
        4 => Just(Op::Tick),
        1 => any::<bool>().prop_map(Op::Writes),
    ]
}

/// A run: the core, the clock, and every write it asked for.
struct Run {
    core: Core,
    at: Moment,
    wall: DateTime<Utc>,
    writes_succeed: bool,
    /// (when, command, whether it succeeded)
    writes: Vec<(Moment, Command, bool)>,
}

impl Run {
    fn new() -> Run {
        Run {
            core: Core::new(settings()),
            at: Moment::default(),
            wall: "2026-11-23T12:00:00Z".parse().unwrap(),
            writes_succeed: true,
            writes: Vec::new(),
        }
    }

    /// Steps the core and carries out its writes as the loop does: each
    /// write's outcome goes back in at once. All effects, in order.
    fn step(&mut self, event: Event) -> Vec<Effect> {
        let mut done = Vec::new();
        let mut queue: VecDeque<Effect> = self.core.step(event).into();
        while let Some(effect) = queue.pop_front() {
            if let Effect::Write { command, .. } = effect {
                let ok = self.writes_succeed;
                self.writes.push((self.at, command, ok));
                let follow = self.core.step(Event::Written {
                    at: self.at,
                    wall: self.wall,
                    command,
                    result: if ok { Ok(()) } else { Err("refused".into()) },
                });
                for next in follow.into_iter().rev() {
                    queue.push_front(next);
                }
            }
            done.push(effect);
        }
        done
    }

    fn apply(&mut self, op: Op) {
        let (at, wall) = (self.at, self.wall);
        match op {
            Op::Wait(ms) => {
                self.at = Moment(self.at.0 + Duration::from_millis(ms));
                self.wall += chrono::TimeDelta::milliseconds(ms as i64);
            }
            Op::Meter(result) => {
                self.step(Event::Meter {
                    at,
                    wall,
                    result: result.map_err(|()| "timed out".into()),
                });
            }
            Op::Device(result) => {
                self.step(Event::Device {
                    at,
                    wall,
                    result: result
                        .map(|(soc, ac_w)| reading(soc, ac_w))
                        .map_err(|()| "refused".into()),
                });
            }
            Op::Schedule(result) => {
                let fetched = result
                    .map(|value| Schedule::from_entries(vec![(key(), value)]))
                    .map_err(|()| FetchError::Unreachable(anyhow::anyhow!("down")));
                self.step(Event::Fetched(fetched));
            }
            Op::Tick => {
                self.step(Event::Tick { at, wall });
            }
            Op::Writes(ok) => self.writes_succeed = ok,
        }
    }
}

fn key() -> schedule::Key {
    schedule::Key::parse("********0000").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn writes_keep_the_rate_rules_and_the_limits(ops in prop::collection::vec(op(), 1..120)) {
        let mut run = Run::new();
        for op in ops {
            run.apply(op);
        }
        let tuning = settings().tuning;
        let limits = settings().limits;
        // The rules count the writes that went through; a non-zero write
        // that changes the command comes min_write_interval after the last
        // change (a repeat of the command in force is no change).
        let mut last_change: Option<(Moment, Command)> = None;
        let mut direction: Option<(AcMode, Moment)> = None;
        for (at, command, ok) in &run.writes {
            match *command {
                Command::Charge { watts } => prop_assert!(watts <= limits.max_charge_w),
                Command::Discharge { watts } => prop_assert!(watts <= limits.max_discharge_w),
                Command::Idle => {}
            }
            let changes = last_change.is_none_or(|(_, c)| c != *command);
            if !command.is_idle() {
                if let Some((before, _)) = last_change.filter(|_| changes) {
                    prop_assert!(
                        at.since(before) >= tuning.min_write_interval,
                        "{command} at {at:?}, the last change at {before:?}: {:?}",
                        run.writes
                    );
                }
                if let (Some(mode), Some((old, since))) = (command.ac_mode(), direction) {
                    prop_assert!(
                        mode == old || at.since(since) >= tuning.min_direction_change,
                        "{command} at {at:?}, the direction changed at {since:?}: {:?}",
                        run.writes
                    );
                }
            }
            if *ok {
                if changes {
                    last_change = Some((*at, *command));
                }
                if let Some(mode) = command.ac_mode()
                    && direction.is_none_or(|(old, _)| old != mode)
                {
                    direction = Some((mode, *at));
                }
            }
        }
    }

    #[test]
    fn the_stop_is_zero_watts_and_comes_last(
        ops in prop::collection::vec(op(), 0..60),
        after in prop::collection::vec(op(), 0..20),
    ) {
        let mut run = Run::new();
        for op in ops {
            run.apply(op);
        }
        let (at, wall) = (run.at, run.wall);
        let writes_before = run.writes.len();
        let effects = run.step(Event::Stopping { at, wall });
        let last = effects.last();
        prop_assert!(
            matches!(last, Some(Effect::Report(Reported::Status(StatusEvent::Stop { .. })))),
            "{effects:?}"
        );
        // Whatever happens after the stop: no write but 0 W, no second stop.
        for op in after {
            run.apply(op);
        }
        prop_assert!(run.writes[writes_before..].iter().all(|(_, c, _)| c.is_idle()), "{:?}", run.writes);
        prop_assert!(run.writes.len() <= writes_before + 1);
    }
}
