use super::*;
use proptest::prelude::*;

fn s(secs: f64) -> Moment {
    Moment::from_secs_f64(secs)
}

fn secs(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

fn known(lag: Duration) -> Lag {
    Lag::Known {
        lag,
        uncertainty: secs(1.0),
    }
}

fn limits() -> Limits {
    Limits {
        max_charge_w: 800,
        max_discharge_w: 600,
        min_soc_pct: 10,
        max_soc_pct: 95,
    }
}

fn tuning() -> Tuning {
    Tuning {
        min_write_interval: secs(10.0),
        min_direction_change: secs(60.0),
        reassert: secs(60.0),
        meter_timeout: secs(30.0),
        deadband_w: 25,
        step_w: 20,
        hysteresis_w: 60,
    }
}

fn device(read: f64, ac_w: i32, soc: u8, last: Option<Command>) -> DeviceState {
    let (ac_mode, input, output) = match last {
        Some(Command::Charge { watts }) => (Some(AcMode::Charge), watts, 0),
        Some(Command::Discharge { watts }) => (Some(AcMode::Discharge), 0, watts),
        _ => (None, 0, 0),
    };
    DeviceState {
        read: s(read),
        soc_pct: soc,
        ac_w,
        charge_max_w: None,
        discharge_max_w: None,
        ac_mode,
        input_limit_w: input,
        output_limit_w: output,
    }
}

/// A case: the device steady at `ac_w` for the last minute, the meter
/// reading `grid_w` now and before.
struct Case {
    now: f64,
    value: ScheduleValue,
    samples: Vec<Sample>,
    power: Vec<DevicePower>,
    device: Option<DeviceState>,
    writes: WriteLog,
    limits: Limits,
    tuning: Tuning,
    lag: Lag,
}

impl Case {
    fn new(value: ScheduleValue, grid_w: i32, ac_w: i32) -> Case {
        let now = 1000.0;
        Case {
            now,
            value,
            samples: (0..10)
                .map(|i| Sample {
                    taken: s(now - 18.0 + 2.0 * f64::from(i)),
                    grid_w,
                })
                .collect(),
            power: (0..40)
                .map(|i| DevicePower {
                    at: s(now - 78.0 + 2.0 * f64::from(i)),
                    ac_w,
                })
                .collect(),
            device: Some(device(now, ac_w, 50, None)),
            writes: WriteLog::default(),
            limits: limits(),
            tuning: tuning(),
            lag: known(secs(5.0)),
        }
    }

    fn written(mut self, at: f64, command: Command) -> Case {
        self.writes = self.writes.record(s(at), command);
        if let Some(d) = self.device.as_mut() {
            *d = device(d.read.0.as_secs_f64(), d.ac_w, d.soc_pct, Some(command));
        }
        self
    }

    fn soc(mut self, soc: u8) -> Case {
        self.device.as_mut().unwrap().soc_pct = soc;
        self
    }

    fn decide(&self) -> Decision {
        decide(&Inputs {
            now: s(self.now),
            value: self.value,
            samples: &self.samples,
            power: &self.power,
            device: self.device,
            writes: self.writes,
            limits: self.limits,
            tuning: self.tuning,
            lag: self.lag,
            response: Response::assumed(&self.tuning),
        })
    }
}

const CHARGE_300: Command = Command::Charge { watts: 300 };

#[test]
fn setpoint_round_trip() {
    for w in [-600, -1, 0, 1, 800] {
        assert_eq!(Command::from_setpoint(w).setpoint_w(), w);
    }
    assert_eq!(Command::from_setpoint(0), Command::Idle);
    assert_eq!(Command::from_setpoint(5).ac_mode(), Some(AcMode::Charge));
    assert_eq!(
        Command::from_setpoint(-5).ac_mode(),
        Some(AcMode::Discharge)
    );
    assert_eq!(Command::Idle.ac_mode(), None);
}

#[test]
fn fixed_watts_charge_and_discharge_clamped() {
    let d = Case::new(ScheduleValue::Watts(300), 0, 0).decide();
    assert_eq!(d.target, CHARGE_300);
    assert_eq!(d.command(), Some(CHARGE_300));
    assert_eq!(d.write.map(|(_, why)| why), Some(WriteReason::First));
    assert_eq!(d.reason, Reason::Fixed);
    let d = Case::new(ScheduleValue::Watts(5000), 0, 0).decide();
    assert_eq!(d.target, Command::Charge { watts: 800 });
    let d = Case::new(ScheduleValue::Watts(-5000), 0, 0).decide();
    assert_eq!(d.target, Command::Discharge { watts: 600 });
    let d = Case::new(ScheduleValue::Watts(0), 0, 0).decide();
    assert_eq!(d.command(), Some(Command::Idle));
}

#[test]
fn device_limits_lower_the_configured_ones_but_zero_means_unknown() {
    let mut c = Case::new(ScheduleValue::Watts(5000), 0, 0);
    c.device.as_mut().unwrap().charge_max_w = Some(400);
    assert_eq!(c.decide().target, Command::Charge { watts: 400 });
    c.device.as_mut().unwrap().charge_max_w = Some(0);
    assert_eq!(c.decide().target, Command::Charge { watts: 800 });
    let mut c = Case::new(ScheduleValue::Watts(-5000), 0, 0);
    c.device.as_mut().unwrap().discharge_max_w = Some(2000);
    assert_eq!(c.decide().target, Command::Discharge { watts: 600 });
}

#[test]
fn fixed_values_respect_soc_bounds() {
    let d = Case::new(ScheduleValue::Watts(300), 0, 0).soc(96).decide();
    assert_eq!((d.target, d.reason), (Command::Idle, Reason::SocMax));
    let d = Case::new(ScheduleValue::Watts(-300), 0, 0).soc(9).decide();
    assert_eq!((d.target, d.reason), (Command::Idle, Reason::SocMin));
    // A level at the bound is rounded: the battery may be half a percent
    // short of it, so it keeps going.
    let d = Case::new(ScheduleValue::Watts(300), 0, 0).soc(95).decide();
    assert_eq!(d.target, CHARGE_300);
    let d = Case::new(ScheduleValue::Watts(-300), 0, 0).soc(10).decide();
    assert_eq!(d.target, Command::Discharge { watts: 300 });
    // Discharging at max SoC and charging at min SoC stay allowed.
    let d = Case::new(ScheduleValue::Watts(-300), 0, 0)
        .soc(100)
        .decide();
    assert_eq!(d.target, Command::Discharge { watts: 300 });
    let d = Case::new(ScheduleValue::Watts(300), 0, 0).soc(0).decide();
    assert_eq!(d.target, CHARGE_300);
}

#[test]
fn soc_stop_is_immediate_even_right_after_a_write() {
    let c = Case::new(ScheduleValue::Watts(-300), 0, -300)
        .written(999.0, Command::Discharge { watts: 300 })
        .soc(9);
    let d = c.decide();
    assert_eq!(d.command(), Some(Command::Idle));
    assert_eq!(d.reason, Reason::SocMin);
}

#[test]
fn no_new_setpoint_at_the_devices_own_cut_off() {
    // Full (95 %, the bound), charging 300 W commanded but only its own
    // 19 W drawn, 400 W exported: a bigger charge changes nothing.
    let full = Case::new(ScheduleValue::NetZero, -400, 19)
        .written(960.0, CHARGE_300)
        .soc(95);
    let d = full.decide();
    assert_eq!(d.target, Command::Charge { watts: 419 });
    assert_eq!(d.write, None);
    // Nor a smaller one: it draws nothing either way.
    let d = Case::new(ScheduleValue::NetZero, -100, 19)
        .written(960.0, CHARGE_300)
        .soc(95)
        .decide();
    assert_eq!(d.target, Command::Charge { watts: 119 });
    assert_eq!(d.write, None);
    // The re-assertion repeats the command in force.
    let mut late = full;
    late.now = 1021.0;
    assert_eq!(
        late.decide().write,
        Some((CHARGE_300, WriteReason::Reassert))
    );
    // Still drawing what it is told (the level is rounded): followed.
    let d = Case::new(ScheduleValue::NetZero, -400, 300)
        .written(900.0, CHARGE_300)
        .soc(95)
        .decide();
    assert_eq!(d.command(), Some(Command::Charge { watts: 700 }));
    // Idle it follows at once.
    let d = Case::new(ScheduleValue::Watts(0), -400, 19)
        .written(900.0, CHARGE_300)
        .soc(95)
        .decide();
    assert_eq!(d.command(), Some(Command::Idle));
    // Empty (10 %), delivering nothing of 300 W: the same.
    let d = Case::new(ScheduleValue::Watts(-500), 0, -5)
        .written(960.0, Command::Discharge { watts: 300 })
        .soc(10)
        .decide();
    assert_eq!(d.target, Command::Discharge { watts: 500 });
    assert_eq!(d.write, None);
}

#[test]
fn net_zero_discharges_to_cover_import_and_charges_from_export() {
    let d = Case::new(ScheduleValue::NetZero, 400, 0).decide();
    assert_eq!(d.target, Command::Discharge { watts: 400 });
    assert_eq!(d.reason, Reason::Tracking);
    let d = Case::new(ScheduleValue::NetZero, -500, 0).decide();
    assert_eq!(d.target, Command::Charge { watts: 500 });
    // Already discharging 300 with 100 still imported: 400 in all.
    let d = Case::new(ScheduleValue::NetZero, 100, -300)
        .written(900.0, Command::Discharge { watts: 300 })
        .decide();
    assert_eq!(d.target, Command::Discharge { watts: 400 });
    assert_eq!(d.write.map(|(_, why)| why), Some(WriteReason::Changed));
}

#[test]
fn net_zero_plus_never_discharges() {
    let d = Case::new(ScheduleValue::NetZeroPlus, 400, 0).decide();
    assert_eq!(d.target, Command::Idle);
    let d = Case::new(ScheduleValue::NetZeroPlus, -500, 0).decide();
    assert_eq!(d.target, Command::Charge { watts: 500 });
    // Charging 500 and now importing 200: charge only 300.
    let d = Case::new(ScheduleValue::NetZeroPlus, 200, 500)
        .written(900.0, Command::Charge { watts: 500 })
        .decide();
    assert_eq!(d.target, CHARGE_300);
    // Importing more than the charge: stop, do not discharge.
    let d = Case::new(ScheduleValue::NetZeroPlus, 900, 500)
        .written(900.0, Command::Charge { watts: 500 })
        .decide();
    assert_eq!(d.target, Command::Idle);
    assert_eq!(d.command(), Some(Command::Idle));
}

#[test]
fn deadband_keeps_the_setpoint() {
    let d = Case::new(ScheduleValue::NetZero, 20, -300)
        .written(990.0, Command::Discharge { watts: 300 })
        .decide();
    assert_eq!(d.reason, Reason::Deadband);
    assert_eq!(d.target, Command::Discharge { watts: 300 });
    assert_eq!(d.command(), None);
    let d = Case::new(ScheduleValue::NetZero, -25, -300)
        .written(990.0, Command::Discharge { watts: 300 })
        .decide();
    assert_eq!(d.command(), None);
    let d = Case::new(ScheduleValue::NetZero, -26, -300)
        .written(990.0, Command::Discharge { watts: 300 })
        .decide();
    assert_eq!(d.reason, Reason::Tracking);
    assert_eq!(d.command(), Some(Command::Discharge { watts: 274 }));
}

#[test]
fn small_opposite_targets_idle_instead_of_switching() {
    // Discharging 100, exporting 150: the target is charge 50 (< hysteresis).
    let d = Case::new(ScheduleValue::NetZero, -150, -100)
        .written(900.0, Command::Discharge { watts: 100 })
        .decide();
    assert_eq!(d.target, Command::Idle);
    assert_eq!(d.command(), Some(Command::Idle));
    // A large one switches (after the direction rule allows it).
    let d = Case::new(ScheduleValue::NetZero, -400, -100)
        .written(900.0, Command::Discharge { watts: 100 })
        .decide();
    assert_eq!(d.target, CHARGE_300);
    assert_eq!(d.command(), Some(CHARGE_300));
}

#[test]
fn lagged_sample_is_corrected_by_the_device_change_since() {
    // The device went from 0 to -400 at t=995 (just written). The meter,
    // 10 s late, still shows 400 W import from before. The field law would
    // add another 400; this one sees the sample predates the change.
    let mut c =
        Case::new(ScheduleValue::NetZero, 400, 0).written(995.0, Command::Discharge { watts: 400 });
    c.lag = known(secs(10.0));
    for p in c.power.iter_mut().filter(|p| p.at >= s(995.0)) {
        p.ac_w = -400;
    }
    c.device.as_mut().unwrap().ac_w = -400;
    let d = c.decide();
    assert_eq!(d.target, Command::Discharge { watts: 400 });
    assert_eq!(d.command(), None);
    assert_eq!(d.reason, Reason::Deadband);
}

#[test]
fn the_devices_own_draw_is_left_out_of_the_setpoint() {
    // Told to charge 300 W, the device draws 319 W from AC (19 W for
    // itself); the house exports 500 W more. The grid zeroes with 819 W on
    // the AC side, so 800 W of charge: a setpoint of 819 W would import
    // the draw for ever, inside the deadband.
    let c = Case::new(ScheduleValue::NetZero, -500, 319).written(900.0, CHARGE_300);
    assert_eq!(c.decide().target, Command::Charge { watts: 800 });
    // Settled there (AC 819 W, grid 0), nothing more to do.
    let c =
        Case::new(ScheduleValue::NetZero, 0, 819).written(900.0, Command::Charge { watts: 800 });
    let d = c.decide();
    assert_eq!(d.target, Command::Charge { watts: 800 });
    assert_eq!(d.reason, Reason::Deadband);
    // A device far from its setpoint (held back, waking) is no own draw.
    let c = Case::new(ScheduleValue::NetZero, -500, 19).written(900.0, CHARGE_300);
    assert_eq!(c.decide().target, Command::Charge { watts: 519 });
}

#[test]
fn a_device_at_its_own_cut_off_is_no_draw() {
    // Told to discharge 35 W, the device (at its own minSoc) gives nothing;
    // the house imports 46 W. The setpoint follows the house, not the gap
    // between the setpoint and nothing.
    let c =
        Case::new(ScheduleValue::NetZero, 46, 0).written(900.0, Command::Discharge { watts: 35 });
    assert_eq!(c.decide().target, Command::Discharge { watts: 46 });
    // At its charge cut-off it draws its own 19 W whatever it was told: the
    // setpoint it was told does not move the target.
    let target = |told: u32| {
        Case::new(ScheduleValue::NetZero, -50, 19)
            .written(900.0, Command::Charge { watts: told })
            .decide()
            .target
    };
    assert_eq!(target(68), Command::Charge { watts: 69 });
    assert_eq!(target(122), Command::Charge { watts: 69 });
    // The same at the discharge cut-off.
    let target = |told: u32| {
        Case::new(ScheduleValue::NetZero, 46, 19)
            .written(900.0, Command::Discharge { watts: told })
            .decide()
            .target
    };
    assert_eq!(target(35), target(90));
}

#[test]
fn at_start_the_first_reading_stands_for_what_came_before() {
    // Just started: readings cover only the last 4 s, less than the lag.
    let mut c = Case::new(ScheduleValue::NetZero, -600, 0);
    c.lag = Lag::Unknown;
    c.power.retain(|p| p.at >= s(996.0));
    c.samples.retain(|p| p.taken >= s(996.0));
    let d = c.decide();
    assert_eq!(d.target, Command::Charge { watts: 600 });
    assert_eq!(d.reason, Reason::Tracking);
    // Once told to move, no more assuming: wait for covered readings.
    let mut c = c.written(997.0, Command::Charge { watts: 600 });
    c.now = 1001.0;
    assert_eq!(c.decide().reason, Reason::WaitingForMeter);
}

#[test]
fn ambiguous_samples_are_skipped_for_older_ones() {
    // The device ramped during the moments the newest samples show; older
    // samples show a steady device.
    let mut c = Case::new(ScheduleValue::NetZero, 300, -100)
        .written(993.0, Command::Discharge { watts: 400 });
    c.lag = known(secs(4.0));
    // Ramp from -100 to -400 between 994 and 998 (ac readings every 2 s).
    for p in c.power.iter_mut() {
        if p.at >= s(994.0) {
            p.ac_w = -100 - 50 * (p.at.0.as_secs() as i32 - 992);
        }
    }
    // Newest samples (taken 998..1000, showing 994..996) read a mid-ramp
    // value that must not be used.
    for smp in c.samples.iter_mut().filter(|x| x.taken >= s(998.0)) {
        smp.grid_w = 9999;
    }
    c.device.as_mut().unwrap().ac_w = -400;
    let d = c.decide();
    // From a steady sample: house 300 - (-100) = 400, covered already.
    assert_eq!(d.target, Command::Discharge { watts: 400 });
    assert_eq!(d.reason, Reason::Deadband);
    assert_eq!(d.command(), None);
}

#[test]
fn unknown_lag_uses_samples_taken_before_a_change_or_holds() {
    let changed_at = |at: f64| {
        let mut c = Case::new(ScheduleValue::NetZero, 300, -100)
            .written(990.0, Command::Discharge { watts: 100 });
        c.lag = Lag::Unknown;
        for p in c.power.iter_mut().filter(|p| p.at >= s(at)) {
            p.ac_w = -300;
        }
        c.device.as_mut().unwrap().ac_w = -300;
        c.decide()
    };
    // Changed 5 s ago: samples taken before that show the old state for
    // sure, whatever the lag.
    let d = changed_at(995.0);
    assert_eq!(d.reason, Reason::Tracking);
    assert_eq!(d.target, Command::Discharge { watts: 400 });
    // Changed 25 s ago: every fresh sample may show either side; hold.
    let d = changed_at(975.0);
    assert_eq!(d.reason, Reason::WaitingForMeter);
    assert_eq!(d.target, Command::Discharge { watts: 100 });
    assert_eq!(d.command(), None);
}

#[test]
fn meter_lost_in_net_zero_stops_at_once() {
    let mut c = Case::new(ScheduleValue::NetZero, 300, -300)
        .written(999.0, Command::Discharge { watts: 300 });
    c.samples.retain(|x| x.taken <= s(970.0));
    let d = c.decide();
    assert_eq!(d.reason, Reason::MeterLost);
    assert_eq!(d.command(), Some(Command::Idle));
    // Fixed values do not need the meter.
    let mut c = Case::new(ScheduleValue::Watts(-300), 0, -300);
    c.samples.clear();
    assert_eq!(c.decide().target, Command::Discharge { watts: 300 });
    // No samples at all in NetZero+: idle.
    let mut c = Case::new(ScheduleValue::NetZeroPlus, 0, 0);
    c.samples.clear();
    assert_eq!(c.decide().reason, Reason::MeterLost);
}

#[test]
fn meter_return_resumes_tracking() {
    let c = Case::new(ScheduleValue::NetZero, 300, 0).written(990.0, Command::Idle);
    let d = c.decide();
    assert_eq!(d.reason, Reason::Tracking);
    assert_eq!(d.command(), Some(Command::Discharge { watts: 300 }));
}

#[test]
fn no_device_reading_no_write() {
    let mut c = Case::new(ScheduleValue::Watts(300), 0, 0);
    c.device = None;
    let d = c.decide();
    assert_eq!(d.reason, Reason::DeviceUnknown);
    assert_eq!(d.command(), None);
}

#[test]
fn min_write_interval_holds_limit_writes_but_not_zero() {
    let c = Case::new(ScheduleValue::Watts(500), 0, 300).written(995.0, CHARGE_300);
    assert_eq!(c.decide().command(), None);
    let c = Case::new(ScheduleValue::Watts(500), 0, 300).written(990.0, CHARGE_300);
    assert_eq!(c.decide().command(), Some(Command::Charge { watts: 500 }));
    let c = Case::new(ScheduleValue::Watts(0), 0, 300).written(999.5, CHARGE_300);
    assert_eq!(c.decide().command(), Some(Command::Idle));
}

#[test]
fn direction_changes_wait_and_idle_meanwhile() {
    let c = Case::new(ScheduleValue::Watts(-300), 0, 300).written(980.0, CHARGE_300);
    let d = c.decide();
    assert_eq!(d.target, Command::Discharge { watts: 300 });
    assert_eq!(d.command(), Some(Command::Idle));
    assert_eq!(
        d.write.map(|(_, why)| why),
        Some(WriteReason::DirectionHold)
    );
    // Already idle: nothing more until the minute is up.
    let c = Case::new(ScheduleValue::Watts(-300), 0, 0)
        .written(980.0, CHARGE_300)
        .written(985.0, Command::Idle);
    assert_eq!(c.decide().command(), None);
    let c = Case::new(ScheduleValue::Watts(-300), 0, 0)
        .written(940.0, CHARGE_300)
        .written(985.0, Command::Idle);
    assert_eq!(
        c.decide().command(),
        Some(Command::Discharge { watts: 300 })
    );
    // Idle in between does not reset the direction clock.
    let c = Case::new(ScheduleValue::Watts(300), 0, 0)
        .written(940.0, CHARGE_300)
        .written(985.0, Command::Idle);
    assert_eq!(c.decide().command(), Some(CHARGE_300));
}

#[test]
fn reassert_after_the_period() {
    let c = Case::new(ScheduleValue::Watts(300), 0, 300).written(945.0, CHARGE_300);
    assert_eq!(c.decide().command(), None);
    let c = Case::new(ScheduleValue::Watts(300), 0, 300).written(940.0, CHARGE_300);
    let d = c.decide();
    assert_eq!(d.command(), Some(CHARGE_300));
    assert_eq!(d.write.map(|(_, why)| why), Some(WriteReason::Reassert));
    // A target within a step is no reason to write, but the re-assertion,
    // written anyway, carries it.
    let c = Case::new(ScheduleValue::Watts(310), 0, 300).written(945.0, CHARGE_300);
    assert_eq!(c.decide().command(), None);
    let c = Case::new(ScheduleValue::Watts(310), 0, 300).written(940.0, CHARGE_300);
    assert_eq!(c.decide().command(), Some(Command::Charge { watts: 310 }));
}

#[test]
fn the_reassertion_takes_the_exact_target_inside_the_deadband() {
    // Importing 15 W, inside the deadband: no write for it...
    let c = Case::new(ScheduleValue::NetZero, 15, 300).written(945.0, CHARGE_300);
    assert_eq!(c.decide().reason, Reason::Deadband);
    assert_eq!(c.decide().command(), None);
    // ...but the re-assertion writes the setpoint that zeroes it.
    let c = Case::new(ScheduleValue::NetZero, 15, 300).written(940.0, CHARGE_300);
    let d = c.decide();
    assert_eq!(d.command(), Some(Command::Charge { watts: 285 }));
    assert_eq!(d.write.map(|(_, why)| why), Some(WriteReason::Reassert));
    // Never across zero: a small charge stays a charge.
    let small = Command::Charge { watts: 10 };
    let c = Case::new(ScheduleValue::NetZero, 20, 10).written(940.0, small);
    assert_eq!(c.decide().command(), Some(small));
}

#[test]
fn a_device_that_reset_its_limits_is_told_again() {
    let mut c = Case::new(ScheduleValue::Watts(300), 0, 0).written(980.0, CHARGE_300);
    let d = c.device.as_mut().unwrap();
    d.input_limit_w = 0;
    let d = c.decide();
    assert_eq!(d.command(), Some(CHARGE_300));
    assert_eq!(
        d.write.map(|(_, why)| why),
        Some(WriteReason::DeviceDiffers)
    );
    // A report older than the write says nothing about it.
    let mut c = Case::new(ScheduleValue::Watts(300), 0, 0).written(980.0, CHARGE_300);
    let d = c.device.as_mut().unwrap();
    d.input_limit_w = 0;
    d.read = s(970.0);
    assert_eq!(c.decide().command(), None);
    // A reset within the write interval waits for it.
    let mut c = Case::new(ScheduleValue::Watts(300), 0, 0).written(995.0, CHARGE_300);
    c.device.as_mut().unwrap().ac_mode = Some(AcMode::Discharge);
    assert_eq!(c.decide().command(), None);
}

#[test]
fn write_log_tracks_direction_changes() {
    let log = WriteLog::default()
        .record(s(1.0), CHARGE_300)
        .record(s(2.0), Command::Charge { watts: 100 })
        .record(s(3.0), Command::Idle);
    assert_eq!(log.ac_mode, Some((AcMode::Charge, s(1.0))));
    assert_eq!(log.last_nonzero, Some(s(2.0)));
    assert_eq!(log.last, Some((s(3.0), Command::Idle)));
    let log = log.record(s(4.0), Command::Discharge { watts: 1 });
    assert_eq!(log.ac_mode, Some((AcMode::Discharge, s(4.0))));
}

/// The lag `estimate_lag` finds, with changes of command at `changes` s.
fn lag_of(
    samples: &[Sample],
    power: &[DevicePower],
    changes: &[f64],
    current: Option<Duration>,
    max_lag: f64,
) -> Option<Duration> {
    let changes: Vec<Moment> = changes.iter().map(|&c| s(c)).collect();
    // A SolarFlow answers within a few seconds.
    estimate_lag(
        samples,
        power,
        (&changes, secs(5.0)),
        current,
        (secs(max_lag), secs(1.0)),
        100,
    )
    .map(|seen| seen.lag)
}

/// The device's AC power for two minutes, once a second: 100 W drawn,
/// 300 W delivered from 40 s to 80 s (commanded just before).
fn step_trace() -> Vec<DevicePower> {
    (0..120u32)
        .map(|t| DevicePower {
            at: s(f64::from(t)),
            ac_w: if (40..80).contains(&t) { -300 } else { 100 },
        })
        .collect()
}

#[test]
fn lag_estimate_finds_the_lag_of_a_step() {
    for true_lag in [0u32, 3, 5, 12, 20] {
        let house = 350;
        let power = step_trace();
        let samples: Vec<Sample> = (30..120)
            .map(|t| {
                let shown = t - true_lag;
                Sample {
                    taken: s(f64::from(t)),
                    grid_w: house + power[shown as usize].ac_w,
                }
            })
            .collect();
        let lag = lag_of(&samples, &power, &[39.5, 79.5], None, 30.0);
        assert_eq!(lag, Some(secs(f64::from(true_lag))), "lag {true_lag}");
    }
}

#[test]
fn lag_estimate_is_not_biased_by_history_the_readings_do_not_cover() {
    // The controller keeps meter samples and device readings over the same
    // span: the oldest samples have no device reading `lag` before them.
    // Leaving them out only for the longer lags used to make 0 s win.
    for true_lag in [5u32, 12, 20] {
        let house = 350;
        let power = step_trace();
        let samples: Vec<Sample> = (0..120u32)
            .map(|t| Sample {
                taken: s(f64::from(t)),
                grid_w: house + power[t.saturating_sub(true_lag) as usize].ac_w,
            })
            .collect();
        let lag = lag_of(&samples, &power, &[39.5, 79.5], None, 30.0);
        assert_eq!(lag, Some(secs(f64::from(true_lag))), "lag {true_lag}");
    }
}

#[test]
fn lag_estimate_keeps_the_current_one_unless_another_explains_clearly_better() {
    let house = 350;
    let true_lag = 12usize;
    let power = step_trace();
    // A reading taken mid-ramp: off by a fraction of the device step.
    let samples: Vec<Sample> = (0..120usize)
        .map(|t| Sample {
            taken: s(t as f64),
            grid_w: house + power[t.saturating_sub(true_lag)].ac_w + if t == 70 { 60 } else { 0 },
        })
        .collect();
    let estimate =
        |current: Option<f64>| lag_of(&samples, &power, &[39.5, 79.5], current.map(secs), 30.0);
    assert_eq!(estimate(None), Some(secs(12.0)));
    assert_eq!(estimate(Some(12.0)), Some(secs(12.0)));
    // A wrong estimate leaves the device's own steps in the implied house
    // power: replaced.
    assert_eq!(estimate(Some(0.0)), Some(secs(12.0)));
    assert_eq!(estimate(Some(11.0)), Some(secs(12.0)));
}

#[test]
fn lag_estimate_waits_until_every_candidate_has_seen_the_last_change() {
    // The device stepped 10 s ago: under a 20 s candidate lag the samples
    // do not show it yet, so that candidate would look flawless.
    let true_lag = 0usize;
    let power: Vec<DevicePower> = (0..120)
        .map(|t| DevicePower {
            at: s(t as f64),
            ac_w: if t >= 110 { 900 } else { 0 },
        })
        .collect();
    let samples: Vec<Sample> = (0..120usize)
        .map(|t| Sample {
            taken: s(t as f64),
            grid_w: -1000 + power[t - true_lag].ac_w,
        })
        .collect();
    let estimate = |upto: usize| lag_of(&samples[..upto], &power[..upto], &[109.5], None, 30.0);
    assert_eq!(estimate(120), None);
}

#[test]
fn lag_estimate_judges_every_lag_on_the_same_samples() {
    // Readings and samples start together, as in the controller; the
    // earliest samples cannot be explained by long lags and must not
    // count for short ones either.
    for true_lag in [0u32, 5, 20] {
        let power: Vec<DevicePower> = (0..150)
            .map(|t| DevicePower {
                at: s(f64::from(t)),
                ac_w: if t >= 40 { 800 } else { 0 },
            })
            .collect();
        let samples: Vec<Sample> = (0..150)
            .map(|t: u32| Sample {
                taken: s(f64::from(t)),
                grid_w: -1600 + power[t.saturating_sub(true_lag) as usize].ac_w,
            })
            .collect();
        let lag = lag_of(&samples, &power, &[39.5], None, 30.0);
        assert_eq!(lag, Some(secs(f64::from(true_lag))), "lag {true_lag}");
        // Before every candidate could see the move: no estimate.
        assert_eq!(lag_of(&samples[..65], &power, &[39.5], None, 30.0), None);
    }
}

/// Device readings once a second over `times`.
fn readings(times: std::ops::Range<u32>, ac_w: impl Fn(u32) -> i32) -> Vec<DevicePower> {
    times
        .map(|t| DevicePower {
            at: s(f64::from(t)),
            ac_w: ac_w(t),
        })
        .collect()
}

/// Meter samples once a second over `times`.
fn meter(times: std::ops::Range<u32>, grid_w: impl Fn(u32) -> i32) -> Vec<Sample> {
    times
        .map(|t| Sample {
            taken: s(f64::from(t)),
            grid_w: grid_w(t),
        })
        .collect()
}

#[test]
fn lag_estimate_needs_movement() {
    let power = readings(0..60, |_| 100);
    let samples = meter(30..60, |_| 50);
    assert_eq!(lag_of(&samples, &power, &[40.0], None, 20.0), None);
    assert_eq!(lag_of(&samples[..2], &power, &[40.0], None, 20.0), None);
}

#[test]
fn lag_estimate_moves_only_on_a_step_a_command_caused() {
    // The meter is 20 s late. At 40 s the device moves by itself (its SoC
    // cut-off) and reports it 16 s late: read as evidence, the readings
    // say 4 s, and a 20 s estimate would fall to it.
    let power = readings(0..120, |t| if t >= 56 { 0 } else { 800 });
    let samples = meter(0..120, |t| -900 + if t >= 60 { 0 } else { 800 });
    for current in [None, Some(secs(20.0))] {
        // No change of command at all, or one long before the move.
        assert_eq!(lag_of(&samples, &power, &[], current, 30.0), None);
        assert_eq!(lag_of(&samples, &power, &[2.0], current, 30.0), None);
        assert_eq!(lag_of(&samples, &power, &[45.0], current, 30.0), None);
        // A command after the move did not cause it.
        assert_eq!(lag_of(&samples, &power, &[70.0], current, 30.0), None);
    }
    // The same readings after a change of command at 55 s are evidence.
    assert_eq!(
        lag_of(&samples, &power, &[55.0], None, 30.0),
        Some(secs(4.0))
    );
}

#[test]
fn lag_estimate_moves_only_when_two_commanded_steps_agree() {
    let seen = |lag: f64, cause: f64| LagSeen {
        lag: secs(lag),
        cause: s(cause),
    };
    let tolerance = secs(2.0);
    // The first estimate is taken at once.
    assert_eq!(
        confirm_lag(None, None, seen(6.0, 10.0), tolerance),
        (Some(secs(6.0)), None)
    );
    let twenty = Some(secs(20.0));
    // One step that says otherwise waits, however often it is read.
    let (lag, pending) = confirm_lag(twenty, None, seen(6.0, 100.0), tolerance);
    assert_eq!((lag, pending), (twenty, Some(seen(6.0, 100.0))));
    let (lag, pending) = confirm_lag(lag, pending, seen(7.0, 100.0), tolerance);
    assert_eq!((lag, pending), (twenty, Some(seen(7.0, 100.0))));
    // A step that confirms the lag in use drops it.
    assert_eq!(
        confirm_lag(lag, pending, seen(21.0, 150.0), tolerance),
        (twenty, None)
    );
    // A second step that agrees moves it; one that disagrees waits.
    assert_eq!(
        confirm_lag(lag, pending, seen(6.0, 200.0), tolerance),
        (Some(secs(6.0)), None)
    );
    assert_eq!(
        confirm_lag(lag, pending, seen(12.0, 200.0), tolerance),
        (twenty, Some(seen(12.0, 200.0)))
    );
}

/// A tiny plant: a house whose load steps, a device that ramps to its
/// setpoint, a meter that shows the grid `lag` late. The law runs every 2 s.
struct Plant {
    lag: f64,
    ramp_w_per_s: f64,
    ac_w: f64,
    setpoint: f64,
    /// Grid history, one value per 0.5 s tick.
    grid: Vec<f64>,
}

fn house_at(t: f64) -> f64 {
    match t {
        t if t < 300.0 => 450.0,
        t if t < 600.0 => 150.0,
        t if t < 900.0 => -500.0,
        _ => 700.0,
    }
}

/// The limits of the simulated plants: no SoC bound in the way.
fn plant_limits() -> Limits {
    Limits {
        max_charge_w: 1200,
        max_discharge_w: 800,
        min_soc_pct: 0,
        max_soc_pct: 100,
    }
}

/// Runs the loop for 1200 s; returns the commands written (time, command)
/// and the final grid history.
fn closed_loop(lag: f64, lag_mode: Lag) -> (Vec<(f64, Command)>, Plant) {
    let dt = 0.5;
    let mut plant = Plant {
        lag,
        ramp_w_per_s: 200.0,
        ac_w: 0.0,
        setpoint: 0.0,
        grid: Vec::new(),
    };
    let mut samples: Vec<Sample> = Vec::new();
    let mut power: Vec<DevicePower> = Vec::new();
    let mut writes = WriteLog::default();
    let mut written = Vec::new();
    let lim = plant_limits();
    for tick in 0..2400 {
        let t = f64::from(tick) * dt;
        let delta = plant.setpoint - plant.ac_w;
        plant.ac_w += delta.clamp(-plant.ramp_w_per_s * dt, plant.ramp_w_per_s * dt);
        plant.grid.push(house_at(t) + plant.ac_w);
        if tick % 4 != 0 {
            continue;
        }
        // The meter updates once a second and shows the grid `lag` ago.
        let shown_tick = ((t - plant.lag).max(0.0).floor() / dt) as usize;
        samples.push(Sample {
            taken: s(t),
            grid_w: plant.grid[shown_tick.min(plant.grid.len() - 1)] as i32,
        });
        power.push(DevicePower {
            at: s(t),
            ac_w: plant.ac_w as i32,
        });
        let last = writes.last_command();
        let mut dev = device(t, plant.ac_w as i32, 50, last);
        dev.read = s(t);
        let d = decide(&Inputs {
            now: s(t),
            value: ScheduleValue::NetZero,
            samples: &samples,
            power: &power,
            device: Some(dev),
            writes,
            limits: lim,
            tuning: tuning(),
            lag: lag_mode,
            response: Response::assumed(&tuning()),
        });
        if let Some(cmd) = d.command() {
            writes = writes.record(s(t), cmd);
            plant.setpoint = cmd.setpoint_w() as f64;
            if written.last().map(|(_, c)| *c) != Some(cmd) {
                written.push((t, cmd));
            }
        }
        assert!(lim.max_charge_w as i64 >= plant.setpoint as i64);
    }
    (written, plant)
}

/// Changes of 50 W or more in opposite directions in a row.
fn flips(changes: &[(f64, Command)]) -> usize {
    let steps: Vec<i64> = changes
        .windows(2)
        .map(|w| w[1].1.setpoint_w() - w[0].1.setpoint_w())
        .filter(|d| d.abs() >= 50)
        .collect();
    steps
        .windows(2)
        .filter(|w| w[0].signum() != w[1].signum())
        .count()
}

#[test]
fn closed_loop_settles_without_oscillation() {
    for lag in [0.0, 5.0, 20.0] {
        for mode in [known(secs(lag)), Lag::Unknown] {
            let (written, plant) = closed_loop(lag, mode);
            for step_at in [0.0, 300.0, 600.0, 900.0] {
                let settle_from = step_at + lag + 60.0;
                let settle_to = step_at + 300.0;
                let window: Vec<(f64, Command)> = written
                    .iter()
                    .filter(|(t, _)| *t >= step_at && *t < settle_to)
                    .copied()
                    .collect();
                assert!(
                    flips(&window) == 0,
                    "lag {lag} {mode:?} step {step_at}: {window:?}"
                );
                let late_changes = window.iter().filter(|(t, _)| *t >= settle_from).count();
                assert!(
                    late_changes <= 1,
                    "lag {lag} {mode:?} step {step_at}: {window:?}"
                );
                // Settled: the grid near zero at the end of the window,
                // unless the limits make that impossible.
                let end = plant.grid[((settle_to - 1.0) / 0.5) as usize];
                let house = house_at(settle_to - 1.0);
                let reachable = (-800.0..=1200.0).contains(&-house);
                if reachable {
                    assert!(
                        end.abs() <= 60.0,
                        "lag {lag} {mode:?} step {step_at}: grid {end}"
                    );
                }
            }
        }
    }
}

#[test]
fn closed_loop_with_the_field_law_oscillates_at_20s() {
    // The comparison the law exists for: setpoint += lagged reading, every
    // 2 s, on the same plant.
    let dt = 0.5;
    let lag = 20.0;
    let mut ac = 0.0f64;
    let mut setpoint = 0.0f64;
    let mut grid: Vec<f64> = Vec::new();
    let mut changes = Vec::new();
    for tick in 0..1200 {
        let t = f64::from(tick) * dt;
        ac += (setpoint - ac).clamp(-100.0, 100.0);
        grid.push(450.0 + ac);
        if tick % 4 == 0 {
            let shown = ((t - lag).max(0.0) / dt) as usize;
            let new = (setpoint - grid[shown]).clamp(-800.0, 1200.0);
            if (new - setpoint).abs() > 20.0 {
                setpoint = new;
                changes.push((t, Command::from_setpoint(setpoint as i64)));
            }
        }
    }
    assert!(flips(&changes) > 3, "{changes:?}");
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Idle),
        (1u32..3000).prop_map(|watts| Command::Charge { watts }),
        (1u32..3000).prop_map(|watts| Command::Discharge { watts }),
    ]
}

fn arb_value() -> impl Strategy<Value = ScheduleValue> {
    prop_oneof![
        (-5000i32..5000).prop_map(ScheduleValue::Watts),
        Just(ScheduleValue::NetZero),
        Just(ScheduleValue::NetZeroPlus),
    ]
}

/// What `never_beyond_limits` checks of one case: every command stays within
/// the configured and reported limits and the SoC bounds, NetZero+ never
/// discharges, and a write is the target, idle or a repeat.
#[allow(clippy::too_many_arguments)]
fn limits_hold(
    value: ScheduleValue,
    grid: i32,
    ac: i32,
    soc: u8,
    last: Option<Command>,
    last_age: f64,
    charge_cap: Option<u32>,
    discharge_cap: Option<u32>,
) -> Result<(), TestCaseError> {
    let mut c = Case::new(value, grid, ac).soc(soc);
    if let Some(cmd) = last {
        c = c.written(1000.0 - last_age, cmd);
    }
    c.device.as_mut().unwrap().charge_max_w = charge_cap;
    c.device.as_mut().unwrap().discharge_max_w = discharge_cap;
    let d = c.decide();
    for cmd in [Some(d.target), d.command()].into_iter().flatten() {
        let w = cmd.setpoint_w();
        prop_assert!((-600..=800).contains(&w), "{cmd:?}");
        if let Some(cap) = charge_cap.filter(|c| *c > 0) {
            prop_assert!(w <= i64::from(cap));
        }
        if let Some(cap) = discharge_cap.filter(|c| *c > 0) {
            prop_assert!(w >= -i64::from(cap));
        }
        if soc > 95 {
            prop_assert!(w <= 0);
        }
        if soc < 10 {
            prop_assert!(w >= 0);
        }
        if value == ScheduleValue::NetZeroPlus {
            prop_assert!(w >= 0 || d.write.is_none() && cmd != d.target);
        }
    }
    if let Some(w) = d.command() {
        prop_assert!(w == d.target || w == Command::Idle || Some(w) == last);
    }
    Ok(())
}

/// Cases the property once found, kept as tests: a charge left from before
/// with the SoC at 0 in NetZero, and a 1 W discharge in NetZero+.
#[test]
fn limits_hold_in_the_cases_proptest_found() {
    limits_hold(
        ScheduleValue::NetZero,
        -2235,
        0,
        0,
        Some(Command::Charge { watts: 801 }),
        155.725_560_648,
        None,
        None,
    )
    .unwrap();
    limits_hold(
        ScheduleValue::NetZeroPlus,
        0,
        0,
        11,
        Some(Command::Discharge { watts: 1 }),
        0.0,
        None,
        None,
    )
    .unwrap();
}

proptest! {
    #[test]
    fn never_beyond_limits(
        value in arb_value(),
        grid in -5000i32..5000,
        ac in -3000i32..3000,
        soc in 0u8..=100,
        last in proptest::option::of(arb_command()),
        last_age in 0.0f64..200.0,
        charge_cap in proptest::option::of(0u32..3000),
        discharge_cap in proptest::option::of(0u32..3000),
    ) {
        limits_hold(value, grid, ac, soc, last, last_age, charge_cap, discharge_cap)?;
    }

    #[test]
    fn rate_rules_hold_over_random_runs(
        steps in proptest::collection::vec((arb_value(), -3000i32..3000, -1500i32..1500, 0u8..=100, 0.1f64..5.0), 1..120),
    ) {
        let t = tuning();
        let mut now = 0.0;
        let mut writes = WriteLog::default();
        let mut samples = Vec::new();
        let mut power = Vec::new();
        let mut log: Vec<(f64, Command)> = Vec::new();
        for (value, grid, ac, soc, gap) in steps {
            now += gap;
            samples.push(Sample { taken: s(now), grid_w: grid });
            power.push(DevicePower { at: s(now), ac_w: ac });
            let d = decide(&Inputs {
                now: s(now),
                value,
                samples: &samples,
                power: &power,
                device: Some(device(now, ac, soc, writes.last_command())),
                writes,
                limits: limits(),
                tuning: t,
                lag: known(secs(3.0)),
                response: Response::assumed(&t),
            });
            if let Some(cmd) = d.command() {
                writes = writes.record(s(now), cmd);
                log.push((now, cmd));
            }
        }
        // A non-zero write that changes the command comes at least
        // min_write_interval after the last change (an idle write included).
        let mut last: Option<(f64, Command)> = None;
        for &(at, cmd) in &log {
            if last.is_some_and(|(_, c)| c == cmd) {
                continue;
            }
            if let Some((since, _)) = last.filter(|_| !cmd.is_idle()) {
                prop_assert!(at - since >= t.min_write_interval.as_secs_f64() - 1e-9, "{log:?}");
            }
            last = Some((at, cmd));
        }
        let mut mode: Option<(AcMode, f64)> = None;
        for (at, cmd) in &log {
            if let Some(m) = cmd.ac_mode() {
                if let Some((old, since)) = mode {
                    if old != m {
                        prop_assert!(at - since >= t.min_direction_change.as_secs_f64() - 1e-9, "{log:?}");
                        mode = Some((m, *at));
                    }
                } else {
                    mode = Some((m, *at));
                }
            }
        }
    }
}

/// A house for the reversal property: levels reached by linear ramps, with
/// a little noise (within the deadband) on top.
#[derive(Debug, Clone)]
struct RandomHouse {
    /// (from s, to W, over s), by time.
    moves: Vec<(f64, f64, f64)>,
    noise: Vec<i32>,
}

impl RandomHouse {
    fn at(&self, t: f64) -> f64 {
        let mut level = 300.0;
        for &(from, to, over) in &self.moves {
            if t >= from + over {
                level = to;
            } else if t > from {
                level += (to - level) * (t - from) / over;
            }
        }
        level + f64::from(self.noise[(t as usize) % self.noise.len()])
    }

    /// How far the house moved (noise aside) between two moments.
    fn moved(&self, from: f64, to: f64) -> f64 {
        let quiet = RandomHouse {
            moves: self.moves.clone(),
            noise: vec![0],
        };
        let mut lo = f64::MAX;
        let mut hi = f64::MIN;
        let mut t = from;
        while t <= to {
            let w = quiet.at(t);
            lo = lo.min(w);
            hi = hi.max(w);
            t += 0.5;
        }
        hi - lo
    }
}

/// A device as the simulated home has it: a change of setpoint takes
/// `ramp` s (linear), out of standby (30 s at 0 W) power flows `wake` s
/// after a non-zero setpoint.
struct RampingDevice {
    ramp: f64,
    wake: f64,
    setpoint: f64,
    ac_w: f64,
    rate: f64,
    idle_since: f64,
    waking_until: Option<f64>,
}

impl RampingDevice {
    fn command(&mut self, t: f64, setpoint: f64) {
        if setpoint == self.setpoint {
            return;
        }
        if self.ac_w == 0.0 && t - self.idle_since >= 30.0 && setpoint != 0.0 {
            self.waking_until = Some(t + self.wake);
        }
        self.setpoint = setpoint;
        self.rate = (setpoint - self.ac_w).abs() / self.ramp.max(0.01);
    }

    fn step(&mut self, t: f64, dt: f64) {
        if self.waking_until.is_some_and(|until| t < until) {
            return;
        }
        self.waking_until = None;
        let max = self.rate * dt;
        self.ac_w += (self.setpoint - self.ac_w).clamp(-max, max);
        if self.ac_w != 0.0 || self.setpoint != 0.0 {
            self.idle_since = t;
        }
    }
}

/// Plays `house` for `duration` s against the law with the meter `lag` s
/// late (law, meter and device reports every second), learning the
/// device's response as the controller does; the changes of command.
fn play_house(
    house: &RandomHouse,
    lag: f64,
    (ramp, wake): (f64, f64),
    duration: f64,
) -> Vec<(f64, Command)> {
    let dt = 0.25;
    let mut dev = RampingDevice {
        ramp,
        wake,
        setpoint: 0.0,
        ac_w: 0.0,
        rate: 0.0,
        idle_since: -100.0,
        waking_until: None,
    };
    let mut grid = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut power: Vec<DevicePower> = Vec::new();
    let mut writes = WriteLog::default();
    let mut response = Response::assumed(&tuning());
    let mut learnt_from = None;
    let mut changes = Vec::new();
    let lim = plant_limits();
    for tick in 0..(duration / dt) as usize {
        let t = tick as f64 * dt;
        dev.step(t, dt);
        grid.push(house.at(t) + dev.ac_w);
        if tick % 4 != 0 {
            continue;
        }
        let shown = (((t - lag).max(0.0)) / dt) as usize;
        samples.push(Sample {
            taken: s(t),
            grid_w: grid[shown.min(grid.len() - 1)] as i32,
        });
        power.push(DevicePower {
            at: s(t),
            ac_w: dev.ac_w as i32,
        });
        let keep = samples.len().saturating_sub(60);
        samples.drain(..keep);
        let keep = power.len().saturating_sub(60);
        power.drain(..keep);
        if let Some((changed, _)) = writes.change
            && learnt_from != Some(changed)
            && let Some(seen) = observe_response(&power, &writes, &tuning())
        {
            learnt_from = Some(changed);
            response = response.learn(seen);
        }
        let last = writes.last_command();
        let d = decide(&Inputs {
            now: s(t),
            value: ScheduleValue::NetZero,
            samples: &samples,
            power: &power,
            device: Some(device(t, dev.ac_w as i32, 50, last)),
            writes,
            limits: lim,
            tuning: tuning(),
            lag: Lag::Known {
                lag: secs(lag),
                uncertainty: secs(1.0),
            },
            response,
        });
        if let Some(cmd) = d.command() {
            writes = writes.record(s(t), cmd);
            dev.command(t, cmd.setpoint_w() as f64);
            if changes.last().map(|(_, c)| *c) != Some(cmd) {
                changes.push((t, cmd));
            }
        }
    }
    changes
}

fn arb_house() -> impl Strategy<Value = RandomHouse> {
    (
        proptest::collection::vec((0.0f64..500.0, -1500.0f64..1500.0, 0.0f64..20.0), 1..6),
        proptest::collection::vec(-15i32..=15, 1..20),
    )
        .prop_map(|(mut moves, noise)| {
            moves.sort_by(|a, b| a.0.total_cmp(&b.0));
            RandomHouse { moves, noise }
        })
}

/// The changes of command `house` (one move, then noise) draws from the
/// law, which must not take a small command back to idle and out again.
fn assert_no_hunting(house: RandomHouse, lag: f64, (ramp, wake): (f64, f64)) {
    let changes = play_house(&house, lag, (ramp, wake), 600.0);
    let idles = changes.iter().filter(|(_, c)| c.is_idle()).count();
    assert!(idles <= 1, "{changes:?}");
}

/// Cases random seeds found: a house drawing about 10 W (within its noise
/// of the deadband) made the law alternate a 26 W discharge and idle every
/// 10 s; one exporting about 17 W, a 26 W charge and idle. Single noisy
/// samples drove those small changes: they are now judged on the mean.
#[test]
fn no_reversal_at_a_house_load_near_the_deadband() {
    let house = RandomHouse {
        moves: vec![(53.022382279891325, 10.434754688613188, 0.0)],
        noise: vec![13, 8, 0, 0, 0, 0, 0, 0, 0, -13, -8, 0, 0, 0, 14, 0, 0, 0, 0],
    };
    assert_no_hunting(house, 5.428331690689863, (3.95514255186461, 0.0));
}

#[test]
fn no_reversal_at_a_small_export_near_the_deadband() {
    let house = RandomHouse {
        moves: vec![(0.0, -17.06160590471509, 5.039777539239508)],
        noise: vec![0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, -9, 0],
    };
    assert_no_hunting(
        house,
        2.1122231205139697,
        (2.4911681573356272, 2.470798501809635),
    );
}

proptest! {
    // A fixed seed, so every run checks the same 48 houses (ten other
    // seeds at 96 houses each passed too when small changes came to be
    // judged on the mean).
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_205),
        ..ProptestConfig::default()
    })]

    /// Command, 0 W, the same direction again within 30 s is a decision
    /// taken back; with the house still (beyond its noise) from the meter's
    /// view of the first command to the last, only the law's own transient
    /// can have caused it.
    #[test]
    fn no_reversal_from_the_laws_own_transient(
        house in arb_house(),
        lag in 0.0f64..25.0,
        ramp in 0.5f64..4.0,
        wake in 0.0f64..6.0,
    ) {
        let changes = play_house(&house, lag, (ramp, wake), 600.0);
        for c in changes.windows(3) {
            let [(ta, a), (_, b), (tc, cc)] = [c[0], c[1], c[2]];
            let reversal = !a.is_idle() && b.is_idle() && cc.ac_mode() == a.ac_mode() && tc - ta <= 30.0;
            let still = house.moved(ta - lag - 30.0, tc) < 100.0;
            prop_assert!(!(reversal && still), "lag {lag} ramp {ramp} wake {wake}: {changes:?}");
        }
    }
}

#[test]
fn a_reassertion_does_not_hold_the_next_change_back() {
    // Discharging 300 W since 900, re-asserted at 998; the house now
    // imports 200 W more.
    let c = Case::new(ScheduleValue::NetZero, 200, -300)
        .written(900.0, Command::Discharge { watts: 300 })
        .written(998.0, Command::Discharge { watts: 300 });
    assert_eq!(
        c.decide().command(),
        Some(Command::Discharge { watts: 500 })
    );
    // A change at 998 does hold it.
    let c = Case::new(ScheduleValue::NetZero, 200, -300)
        .written(900.0, Command::Discharge { watts: 250 })
        .written(998.0, Command::Discharge { watts: 300 });
    assert_eq!(c.decide().command(), None);
}

#[test]
fn a_command_waits_the_write_interval_after_an_idle_write_too() {
    let mut c = Case::new(ScheduleValue::NetZero, 300, 0)
        .written(900.0, Command::Discharge { watts: 200 })
        .written(996.0, Command::Idle);
    assert_eq!(c.decide().target, Command::Discharge { watts: 300 });
    assert_eq!(c.decide().command(), None);
    c.now = 1006.0;
    assert_eq!(
        c.decide().command(),
        Some(Command::Discharge { watts: 300 })
    );
}

#[test]
fn mid_transient_the_law_holds_its_last_decision() {
    // Charging 500 W until 990, then told to discharge 300 (the house's
    // step). The device ramps through 0 until 996; at lag 0 the meter shows
    // that ramp, which read against stale device power looks like a house
    // step back.
    let mut c = Case::new(ScheduleValue::NetZero, 0, 500)
        .written(900.0, Command::Charge { watts: 500 })
        .written(990.0, Command::Discharge { watts: 300 });
    c.lag = known(secs(0.0));
    for p in c.power.iter_mut().filter(|p| p.at > s(990.0)) {
        p.ac_w = 500 - 800 * (p.at.0.as_secs() as i32 - 990) / 8;
    }
    for smp in c.samples.iter_mut().filter(|x| x.taken > s(990.0)) {
        smp.grid_w = -900;
    }
    c.device.as_mut().unwrap().ac_w = 100;
    let d = c.decide();
    assert_eq!(d.command(), None, "{d:?}");
    assert_eq!(d.target, Command::Discharge { watts: 300 });
    assert_eq!(d.reason, Reason::WaitingForMeter);
}

#[test]
fn the_devices_response_is_learnt_from_its_readings() {
    let writes = WriteLog::default()
        .record(s(100.0), Command::Idle)
        .record(s(200.0), Command::Discharge { watts: 500 });
    // Idle with its 19 W draw; starts to move 2 s after the write, within
    // `step_w` of -500 W plus that draw 4 s after it.
    let power: Vec<DevicePower> = (190..=210)
        .map(|t| DevicePower {
            at: s(f64::from(t)),
            ac_w: match t {
                ..202 => 19,
                202..205 => 19 - 170 * (t - 201),
                _ => -481,
            },
        })
        .collect();
    let seen = observe_response(&power, &writes, &tuning()).unwrap();
    assert_eq!(
        seen,
        Response {
            wake: secs(2.0),
            settle: secs(4.0)
        }
    );
    // Not yet settled: nothing to learn.
    assert_eq!(observe_response(&power[..14], &writes, &tuning()), None);
    // A change within the hysteresis says nothing.
    let small = writes.record(s(209.0), Command::Discharge { watts: 460 });
    assert_eq!(observe_response(&power, &small, &tuning()), None);
    let learnt = Response::assumed(&tuning()).learn(seen);
    assert_eq!(learnt.settle, secs(10.0) * 3 / 4 + secs(4.0) / 4);
    assert_eq!(
        learnt
            .learn(Response {
                wake: secs(6.0),
                settle: secs(12.0)
            })
            .settle,
        secs(12.0)
    );
}
