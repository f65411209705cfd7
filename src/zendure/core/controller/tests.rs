//! `Core::step` driven directly with generated event sequences: whatever
//! the meter, the device, the schedule and the writes' outcomes do, the
//! effects keep the write-rate rules and the limits, and the stop comes
//! last.

use std::time::Duration;

use chrono::TimeDelta;
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
        product: None,
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

mod overrides {
    use super::*;
    use crate::zendure::core::manual::{OverrideMode, OverrideRequest};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Idle from midnight, 200 W from 13:00; the clock at 12:00 UTC.
    fn run() -> Run {
        let mut run = Run::new();
        let later = schedule::Key::parse("********1300").unwrap();
        run.step(Event::Fetched(Ok(Schedule::from_entries(vec![
            (key(), ScheduleValue::IDLE),
            (later, ScheduleValue::Watts(200)),
        ]))));
        run
    }

    fn saved(effects: &[Effect]) -> Option<Option<Override>> {
        effects.iter().find_map(|e| match e {
            Effect::SaveOverride(o) => Some(*o),
            _ => None,
        })
    }

    /// The override events among the effects, for the server's page.
    fn told(effects: &[Effect]) -> Vec<&StatusEvent> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Report(Reported::Status(
                    event @ (StatusEvent::Override { .. } | StatusEvent::OverrideEnded { .. }),
                )) => Some(event),
                _ => None,
            })
            .collect()
    }

    /// Readings, then a control step; its effects.
    fn cycle(run: &mut Run) -> Vec<Effect> {
        run.apply(Op::Meter(Ok(0)));
        run.apply(Op::Device(Ok((50, 0))));
        let (at, wall) = (run.at, run.wall);
        run.step(Event::Tick { at, wall })
    }

    #[test]
    fn it_replaces_the_value_until_the_schedule_changes() {
        let mut run = run();
        cycle(&mut run);
        let wall = run.wall;
        let request = OverrideRequest::Set {
            mode: OverrideMode::Charge,
            watts: 300,
            lasting: None,
        };
        let effects = run.step(Event::Override { wall, request });
        let set = saved(&effects).flatten().expect("the override is saved");
        assert_eq!(set.until, Some(at("2026-11-23T13:00:00Z")));
        assert_eq!(
            told(&effects),
            [&StatusEvent::Override {
                manual: set,
                timestamp: wall.timestamp()
            }]
        );
        // The same request again: nothing to save.
        assert_eq!(saved(&run.step(Event::Override { wall, request })), None);
        // The first cycle's write holds the next one for min_write_interval.
        run.apply(Op::Wait(10_000));
        cycle(&mut run);
        assert_eq!(
            run.writes.last().map(|w| w.1),
            Some(Command::Charge { watts: 300 })
        );
        let status = run.core.status(run.at, run.wall);
        assert_eq!(status.manual, Some(set));
        assert_eq!(
            status.schedule.value,
            serde_json::json!(0),
            "the schedule stays"
        );
        run.apply(Op::Wait(3_589_000));
        assert_eq!(saved(&cycle(&mut run)), None, "still 12:59:59");
        run.apply(Op::Wait(1_000));
        let effects = cycle(&mut run);
        assert_eq!(saved(&effects), Some(None), "it ends at 13:00");
        assert_eq!(
            told(&effects),
            [&StatusEvent::OverrideEnded {
                manual: set,
                timestamp: at("2026-11-23T13:00:00Z").timestamp()
            }]
        );
        assert_eq!(run.core.status(run.at, run.wall).manual, None);
    }

    #[test]
    fn a_duration_and_a_clear() {
        let mut run = run();
        let wall = run.wall;
        let request = OverrideRequest::Set {
            mode: OverrideMode::Discharge,
            watts: 100,
            lasting: Some(Duration::from_secs(90)),
        };
        let effects = run.step(Event::Override { wall, request });
        assert_eq!(
            saved(&effects).flatten().and_then(|o| o.until),
            Some(at("2026-11-23T12:01:30Z"))
        );
        let set = saved(&effects).flatten().unwrap();
        let effects = run.step(Event::Override {
            wall,
            request: OverrideRequest::Clear,
        });
        assert_eq!(saved(&effects), Some(None));
        assert_eq!(
            told(&effects),
            [&StatusEvent::OverrideEnded {
                manual: set,
                timestamp: wall.timestamp()
            }]
        );
    }

    #[test]
    fn a_restored_override_that_has_ended_ends_at_the_first_step() {
        let mut run = run();
        run.step(Event::Restored(Override {
            mode: OverrideMode::Idle,
            watts: 0,
            until: Some(at("2026-11-23T11:00:00Z")),
        }));
        assert_eq!(saved(&cycle(&mut run)), Some(None));
        let mut run = self::run();
        let kept = Override {
            mode: OverrideMode::NetZero,
            watts: 0,
            until: None,
        };
        run.step(Event::Restored(kept));
        assert_eq!(saved(&cycle(&mut run)), None);
        assert_eq!(run.core.status(run.at, run.wall).manual, Some(kept));
    }
}

/// The hours a core reports, and the status it shows: the finished hour
/// once no reading can change it, the partial one at the stop, before the
/// stop event; today's totals in the status.
#[test]
fn energy_hours_are_reported_at_the_hour_and_at_the_stop() {
    let mut core = Core::new(settings());
    let start: DateTime<Utc> = "2026-12-05T10:59:00Z".parse().unwrap();
    core.step(Event::Started { wall: start });
    let mut hours = Vec::new();
    let mut status = None;
    for s in (0..=90).step_by(2) {
        let (at, wall) = (
            Moment(Duration::from_secs(s)),
            start + TimeDelta::seconds(s as i64),
        );
        let mut effects = core.step(Event::Meter {
            at,
            wall,
            result: Ok(2000),
        });
        effects.extend(core.step(Event::Device {
            at,
            wall,
            result: Ok(reading(50, 400)),
        }));
        effects.extend(core.step(Event::Tick { at, wall }));
        for effect in effects {
            match effect {
                Effect::Report(Reported::Energy(hour)) => hours.push((s, hour)),
                Effect::Status(doc) => status = Some(doc),
                _ => {}
            }
        }
    }
    // 11:00:00 plus the 8 s meter_timeout.
    assert_eq!(hours.len(), 1, "{hours:?}");
    let (sent_at, hour) = &hours[0];
    assert_eq!(*sent_at, 68);
    assert_eq!(
        hour.hour,
        "2026-12-05T10:00:00Z"
            .parse::<DateTime<Utc>>()
            .unwrap()
            .timestamp()
    );
    assert!(
        (hour.sums.import_wh - 2000.0 / 60.0).abs() < 1e-9,
        "{hour:?}"
    );
    assert!((hour.sums.charged_wh - 400.0 / 60.0).abs() < 1e-9);
    let energy = status.unwrap().energy.unwrap();
    assert_eq!(energy.since, start);
    assert_eq!(energy.total.grid_import_kwh, 0.05);
    assert_eq!(energy.today.date.to_string(), "2026-12-05");
    let wall = start + TimeDelta::seconds(91);
    let effects = core.step(Event::Stopping {
        at: Moment(Duration::from_secs(91)),
        wall,
    });
    let reported: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Report(r) => Some(r),
            _ => None,
        })
        .collect();
    let [
        Reported::Energy(partial),
        Reported::Status(StatusEvent::Stop { .. }),
    ] = reported[..]
    else {
        panic!("{reported:?}");
    };
    assert_eq!(partial.hour, hour.hour + 3600);
    assert_eq!(partial.run, hour.run);
    assert!((partial.sums.grid_s - 31.0).abs() < 1e-9, "{partial:?}");
}
