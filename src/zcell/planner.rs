//! The pure core: (local time, BMS snapshot, policy) -> what each owned slot
//! should hold. No I/O here; everything is local wall-clock, as on the GX.

use anyhow::{Context, Result, ensure};
use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Timelike};
use chrono_tz::Tz;

use crate::span::Span;
use crate::zcell::battery::{Battery, Snapshot};
use crate::zcell::policy::{Holidays, Policy, Rules};
use crate::zcell::slot::{
    ChargeSlot, DurationSeconds, SecondsAfterMidnight, SlotIndex, SlotPlan, Soc,
};

/// When a battery's next maintenance (strip) cycle happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    Running,
    Overdue,
    /// Local wall-clock time it falls due.
    Due(NaiveDateTime),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outlook {
    pub battery: Battery,
    pub prediction: Prediction,
    /// Whether this battery makes the planning day a maintenance day.
    pub in_day: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// Keep the battery charged outside the peaks.
    Normal,
    /// Let the battery drain so the BMS can run its maintenance cycle.
    Maintenance,
}

impl std::fmt::Display for DayKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DayKind::Normal => "normal",
            DayKind::Maintenance => "maintenance",
        })
    }
}

/// A charge window: the GX holds the battery at `soc` during `span`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub span: Span,
    pub soc: Soc,
    /// `AllowDischarge` for its slot, when the policy sets it at all.
    pub allow_discharge: Option<bool>,
}

impl Window {
    fn charge_slot(&self) -> ChargeSlot {
        let start = self.span.start;
        ChargeSlot {
            day: start.weekday(),
            start: SecondsAfterMidnight(start.num_seconds_from_midnight()),
            duration: DurationSeconds(
                u32::try_from(self.span.wall_seconds()).expect("windows are positive and short"),
            ),
            soc: self.soc,
            allow_discharge: self.allow_discharge,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub day: Span,
    pub kind: DayKind,
    pub outlook: Vec<Outlook>,
    /// The peak intervals inside the planning day.
    pub peaks: Vec<Span>,
    pub windows: Vec<Window>,
    /// One entry per owned slot, in slot order.
    pub slots: Vec<(SlotIndex, SlotPlan)>,
}

/// The planning day around `now`: from the latest `day_start` at or before
/// it to the same wall-clock time the next day. Every run inside one
/// planning day therefore plans the same thing.
pub fn planning_day(now: NaiveDateTime, policy: &Policy) -> Span {
    let today = now.date().and_time(policy.day_start);
    let start = if today <= now {
        today
    } else {
        today - TimeDelta::days(1)
    };
    Span::new(start, start + TimeDelta::days(1)).expect("a day is positive")
}

pub fn predict(now: DateTime<Tz>, battery: &Battery) -> Prediction {
    let seconds = battery.seconds_to_maintenance();
    if battery.stripping {
        Prediction::Running
    } else if seconds <= 0.0 {
        Prediction::Overdue
    } else {
        // The BMS counts real seconds; the GX compares wall-clock times.
        let due = now + TimeDelta::seconds(seconds.round() as i64);
        Prediction::Due(due.naive_local())
    }
}

pub fn plan(now: DateTime<Tz>, snapshot: &Snapshot, policy: &Policy) -> Result<Plan> {
    let day = planning_day(now.naive_local(), policy);
    let outlook: Vec<Outlook> = snapshot
        .batteries
        .iter()
        .map(|battery| {
            let prediction = predict(now, battery);
            let in_day = match prediction {
                Prediction::Running | Prediction::Overdue => true,
                Prediction::Due(at) => at < day.end,
            };
            Outlook {
                battery: battery.clone(),
                prediction,
                in_day,
            }
        })
        .collect();
    let kind = if outlook.iter().any(|o| o.in_day) {
        DayKind::Maintenance
    } else {
        DayKind::Normal
    };
    let rules = policy.rules_on(day.start.date());
    // A peak that starts the evening before can reach into the planning day.
    let peaks: Vec<Span> = policy
        .peak_spans(
            rules,
            day.start.date().pred_opt().expect("date in range"),
            day.end.date(),
        )
        .iter()
        .filter_map(|p| p.intersect(&day))
        .collect();
    let windows = windows(kind, &day, &peaks, rules, policy.sets_allow_discharge());
    ensure!(
        windows.len() <= policy.slots.count(),
        "{day} needs {} charge windows ({}) but only {}",
        windows.len(),
        windows
            .iter()
            .map(|w| format!(
                "{}-{}",
                w.span.start.format("%H:%M"),
                w.span.end.format("%H:%M")
            ))
            .collect::<Vec<_>>()
            .join(", "),
        owned_phrase(&policy.slots)
    );
    let mut charges = windows.iter().map(|w| SlotPlan::Charge(w.charge_slot()));
    let slots = policy
        .slots
        .iter()
        .map(|slot| (slot, charges.next().unwrap_or(SlotPlan::Disabled)))
        .collect();
    Ok(Plan {
        day,
        kind,
        outlook,
        peaks,
        windows,
        slots,
    })
}

/// The day's charge windows. With `discharge` (some maintenance window opts
/// in), each sets its slot's `AllowDischarge`, so an opted-in window's 1 is
/// never left on a later window.
fn windows(
    kind: DayKind,
    day: &Span,
    peaks: &[Span],
    rules: &Rules,
    discharge: bool,
) -> Vec<Window> {
    let mut windows: Vec<Window> = match kind {
        DayKind::Normal => day
            .minus(peaks)
            .into_iter()
            .map(|span| Window {
                span,
                soc: rules.reserve_soc,
                allow_discharge: discharge.then_some(false),
            })
            .collect(),
        DayKind::Maintenance => rules
            .maintenance_windows
            .iter()
            .flat_map(|mw| {
                let first = day
                    .start
                    .date()
                    .pred_opt()
                    .expect("date in range")
                    .iter_days()
                    .take(3)
                    .find_map(|date| mw.range.on(date).intersect(day));
                first
                    .map(|span| span.minus(peaks))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|span| Window {
                        span,
                        soc: mw.soc,
                        allow_discharge: discharge.then_some(mw.allow_discharge),
                    })
            })
            .collect(),
    };
    windows.sort_by_key(|w| w.span);
    windows
}

/// Refuses a policy that needs more charge windows than owned slots on any
/// planning day: each season (and the base rules), each weekday, both day
/// kinds, with and without holidays on the day, the day before and after.
/// `slot 3 is owned`, `slots 3,4 are owned`.
fn owned_phrase(slots: &crate::zcell::policy::OwnedSlots) -> String {
    match slots.count() {
        1 => format!("slot {slots} is owned"),
        _ => format!("slots {slots} are owned"),
    }
}

pub fn check_fits(policy: &Policy) -> Result<()> {
    // Months to try: one per season, and one outside every season.
    let mut months: Vec<u32> = policy.seasons.iter().map(|s| s.months.first()).collect();
    months.extend((1..=12).find(|m| policy.seasons.iter().all(|s| !s.months.contains(*m))));
    let far = Snapshot {
        batteries: vec![Battery {
            id: "check".into(),
            soc: 50.0,
            stripping: false,
            run_timer: 0.0,
            run_target: 1e8,
        }],
    };
    let due = Snapshot {
        batteries: vec![Battery {
            stripping: true,
            ..far.batteries[0].clone()
        }],
    };
    for month in months {
        let first = chrono::NaiveDate::from_ymd_opt(2026, month, 10).expect("valid date");
        for date in first.iter_days().take(7) {
            for holidays in 0..8u8 {
                let mut trial = policy.clone();
                trial.holidays = Holidays::default();
                for (bit, offset) in [(1, -1), (2, 0), (4, 1)] {
                    if holidays & bit != 0 {
                        trial.holidays.add_date(date + TimeDelta::days(offset));
                    }
                }
                let now = date
                    .and_time(policy.day_start)
                    .and_utc()
                    .with_timezone(&Tz::UTC);
                for (snapshot, kind) in [(&far, DayKind::Normal), (&due, DayKind::Maintenance)] {
                    plan(now, snapshot, &trial).with_context(|| {
                        format!("the policy needs more owned slots, e.g. on this {kind} day")
                    })?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zcell::policy::parse_clock;
    use crate::zcell::slot::SlotValues;
    use chrono::{NaiveDate, TimeZone, Weekday};

    const DAY: i64 = 86_400;
    const HOUR: i64 = 3_600;

    fn policy() -> Policy {
        Policy {
            slots: "3,4".parse().unwrap(),
            day_start: parse_clock("07:00").unwrap(),
            rules: Rules::default(),
            seasons: vec![],
            holidays: Holidays::default(),
        }
        .validate()
        .unwrap()
    }

    fn at(tz: Tz, date: (i32, u32, u32), h: u32, m: u32) -> DateTime<Tz> {
        tz.with_ymd_and_hms(date.0, date.1, date.2, h, m, 0)
            .earliest()
            .unwrap()
    }

    fn hobart(date: (i32, u32, u32), h: u32, m: u32) -> DateTime<Tz> {
        at(chrono_tz::Australia::Hobart, date, h, m)
    }

    fn battery(timer: f64, target: f64, stripping: bool) -> Snapshot {
        Snapshot {
            batteries: vec![Battery {
                id: "1".into(),
                soc: 80.0,
                stripping,
                run_timer: timer,
                run_target: target,
            }],
        }
    }

    /// Maintenance due in `seconds` real seconds from now.
    fn due_in(seconds: i64) -> Snapshot {
        battery(259_200.0 - seconds as f64, 259_200.0, false)
    }

    fn far() -> Snapshot {
        due_in(2 * DAY + 1)
    }

    /// The owned slots as raw GX values: (day, start, duration, soc), `None` when disabled.
    fn raw(plan: &Plan) -> Vec<Option<(i32, i32, i32, i32)>> {
        plan.slots
            .iter()
            .map(|(_, p)| match p {
                SlotPlan::Charge(c) => {
                    let SlotValues {
                        day,
                        start,
                        duration,
                        soc,
                        ..
                    } = c.values();
                    Some((day, start, duration, soc))
                }
                SlotPlan::Disabled => None,
            })
            .collect()
    }

    fn h(hours: i64) -> i32 {
        (hours * HOUR) as i32
    }

    // 2026-11-23 is a Monday.
    const MON: (i32, u32, u32) = (2026, 11, 23);

    #[test]
    fn every_weekday_of_a_normal_week() {
        // Day codes: Sunday 0 .. Saturday 6.
        for offset in 0..7u32 {
            let now = hobart((2026, 11, 23 + offset), 7, 0);
            let p = plan(now, &far(), &policy()).unwrap();
            assert_eq!(p.kind, DayKind::Normal);
            let code = now.weekday().num_days_from_sunday() as i32;
            let expected = if now.weekday() == Weekday::Sat || now.weekday() == Weekday::Sun {
                vec![Some((code, h(7), DAY as i32, 100)), None]
            } else {
                vec![
                    Some((code, h(10), h(6), 100)),
                    Some((code, h(21), h(10), 100)),
                ]
            };
            assert_eq!(raw(&p), expected, "{}", now.weekday());
        }
    }

    #[test]
    fn friday_night_is_off_peak_until_saturday_morning() {
        let p = plan(hobart((2026, 11, 27), 7, 0), &far(), &policy()).unwrap();
        assert_eq!(raw(&p)[1], Some((5, h(21), h(10), 100)));
    }

    #[test]
    fn maintenance_day_on_a_weekday() {
        let p = plan(hobart(MON, 7, 0), &due_in(10 * HOUR), &policy()).unwrap();
        assert_eq!(p.kind, DayKind::Maintenance);
        assert_eq!(
            raw(&p),
            vec![Some((1, h(13), h(3), 50)), Some((2, h(3), h(4), 100))]
        );
    }

    #[test]
    fn maintenance_day_on_a_sunday_starts_monday_morning_window_on_monday() {
        let p = plan(hobart((2026, 11, 29), 7, 0), &due_in(HOUR), &policy()).unwrap();
        assert_eq!(
            raw(&p),
            vec![Some((0, h(13), h(3), 50)), Some((1, h(3), h(4), 100))]
        );
    }

    #[test]
    fn what_makes_a_maintenance_day() {
        let now = hobart(MON, 7, 0);
        let kind = |s: Snapshot| plan(now, &s, &policy()).unwrap().kind;
        assert_eq!(
            kind(battery(262_000.0, 259_200.0, true)),
            DayKind::Maintenance
        );
        assert_eq!(kind(battery(10.0, 259_200.0, true)), DayKind::Maintenance);
        assert_eq!(
            kind(battery(259_200.0, 259_200.0, false)),
            DayKind::Maintenance
        );
        assert_eq!(kind(due_in(DAY - 60)), DayKind::Maintenance);
        assert_eq!(
            kind(due_in(DAY)),
            DayKind::Normal,
            "due exactly at the day's end"
        );
        assert_eq!(kind(due_in(DAY + 60)), DayKind::Normal);
    }

    #[test]
    fn any_battery_makes_a_maintenance_day() {
        let mut two = far();
        two.batteries.push(due_in(5 * HOUR).batteries[0].clone());
        let p = plan(hobart(MON, 7, 0), &two, &policy()).unwrap();
        assert_eq!(p.kind, DayKind::Maintenance);
        assert_eq!(
            p.outlook.iter().map(|o| o.in_day).collect::<Vec<_>>(),
            vec![false, true]
        );
        assert_eq!(p.outlook[0].battery.id, "1");
    }

    #[test]
    fn predictions_are_local_wall_clock() {
        let p = plan(hobart(MON, 7, 0), &due_in(10 * HOUR), &policy()).unwrap();
        let due = NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(17, 0, 0)
            .unwrap();
        assert_eq!(p.outlook[0].prediction, Prediction::Due(due));
        let running = plan(hobart(MON, 7, 0), &battery(5.0, 9.0, true), &policy()).unwrap();
        assert_eq!(running.outlook[0].prediction, Prediction::Running);
        let overdue = plan(hobart(MON, 7, 0), &battery(9.0, 5.0, false), &policy()).unwrap();
        assert_eq!(overdue.outlook[0].prediction, Prediction::Overdue);
    }

    #[test]
    fn any_run_inside_the_planning_day_plans_the_same() {
        // The battery keeps its due instant; only the clock moves.
        let due_at = hobart((2026, 11, 24), 9, 0);
        let first = plan(hobart(MON, 7, 0), &due_in(26 * HOUR), &policy()).unwrap();
        for (date, hh, mm) in [(MON, 12, 0), (MON, 23, 59), ((2026, 11, 24), 6, 59)] {
            let now = hobart(date, hh, mm);
            let left = (due_at - now).num_seconds();
            let again = plan(now, &due_in(left), &policy()).unwrap();
            assert_eq!(raw(&again), raw(&first), "{now}");
            assert_eq!(again.day, first.day);
        }
        let next = plan(hobart((2026, 11, 24), 7, 0), &due_in(2 * HOUR), &policy()).unwrap();
        assert_ne!(next.day, first.day);
    }

    #[test]
    fn before_day_start_belongs_to_yesterday() {
        let p = plan(hobart((2026, 11, 24), 6, 30), &far(), &policy()).unwrap();
        assert_eq!(
            p.day.start.date(),
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
        );
        assert_eq!(raw(&p)[0], Some((1, h(10), h(6), 100)));
    }

    #[test]
    fn other_day_starts() {
        let mut midnight = policy();
        midnight.day_start = parse_clock("00:00").unwrap();
        midnight.slots = "0,1,2".parse().unwrap();
        let p = plan(hobart(MON, 0, 0), &far(), &midnight).unwrap();
        assert_eq!(
            raw(&p),
            vec![
                Some((1, 0, h(7), 100)),
                Some((1, h(10), h(6), 100)),
                Some((1, h(21), h(3), 100)),
            ]
        );

        let mut evening = policy();
        evening.day_start = parse_clock("21:00").unwrap();
        let p = plan(hobart(MON, 21, 30), &far(), &evening).unwrap();
        assert_eq!(
            raw(&p),
            vec![Some((1, h(21), h(10), 100)), Some((2, h(10), h(6), 100))]
        );
        let p = plan(hobart(MON, 21, 30), &due_in(HOUR), &evening).unwrap();
        assert_eq!(
            raw(&p),
            vec![Some((2, h(3), h(4), 100)), Some((2, h(13), h(3), 50))],
            "windows go in time order"
        );
    }

    #[test]
    fn too_many_windows_name_the_day_and_the_windows() {
        let mut one = policy();
        one.slots = "4".parse().unwrap();
        let err = plan(hobart(MON, 7, 0), &far(), &one)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Mon 2026-11-23 07:00-07:00"), "{err}");
        assert!(err.contains("10:00-16:00, 21:00-07:00"), "{err}");
        assert!(err.ends_with("but only slot 4 is owned"), "{err}");
        // A weekend needs one slot only.
        assert!(plan(hobart((2026, 11, 28), 7, 0), &far(), &one).is_ok());
    }

    #[test]
    fn peaks_cut_maintenance_windows() {
        let mut p = policy();
        p.rules.maintenance_windows = vec!["15:00-18:00@40".parse().unwrap()];
        let got = plan(hobart(MON, 7, 0), &due_in(HOUR), &p).unwrap();
        assert_eq!(raw(&got), vec![Some((1, h(15), h(1), 40)), None]);
        // On a Saturday the same window is whole.
        let sat = plan(hobart((2026, 11, 28), 7, 0), &due_in(HOUR), &p).unwrap();
        assert_eq!(raw(&sat)[0], Some((6, h(15), h(3), 40)));
    }

    #[test]
    fn a_peak_crossing_midnight_reaches_into_the_next_planning_day() {
        let mut p = policy();
        p.rules.peaks = vec!["sun@22:00-08:00".parse().unwrap()];
        let got = plan(hobart(MON, 7, 0), &far(), &p).unwrap();
        assert_eq!(raw(&got)[0], Some((1, h(8), h(23), 100)));
    }

    #[test]
    fn unused_slots_are_disabled_and_extra_slots_stay_off() {
        let mut p = policy();
        p.slots = "0,2,4".parse().unwrap();
        let got = plan(hobart(MON, 7, 0), &far(), &p).unwrap();
        let owned: Vec<u8> = got.slots.iter().map(|(s, _)| s.get()).collect();
        assert_eq!(owned, vec![0, 2, 4]);
        assert_eq!(got.slots[2].1, SlotPlan::Disabled);
    }

    #[test]
    fn dst_spring_forward_keeps_wall_clock_durations() {
        // Sydney: 2026-10-04 02:00 AEST -> 03:00 AEDT (a Sunday).
        let tz = chrono_tz::Australia::Sydney;
        let sat = at(tz, (2026, 10, 3), 7, 0);
        let p = plan(sat, &far(), &policy()).unwrap();
        assert_eq!(raw(&p)[0], Some((6, h(7), DAY as i32, 100)));
        let end = tz.from_local_datetime(&p.day.end).unwrap();
        assert_eq!((end - sat).num_hours(), 23, "a 23 h planning day");

        // 23.5 real hours is 07:30 on the wall clock: after the day's end.
        assert_eq!(
            plan(sat, &due_in(23 * HOUR + 1800), &policy())
                .unwrap()
                .kind,
            DayKind::Normal
        );
        assert_eq!(
            plan(sat, &due_in(22 * HOUR + 1800), &policy())
                .unwrap()
                .kind,
            DayKind::Maintenance
        );

        // Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (a Sunday); a maintenance
        // window over the gap keeps its wall-clock length.
        let tz = chrono_tz::Europe::Berlin;
        let mut p2 = policy();
        p2.rules.maintenance_windows = vec!["01:00-05:00@80".parse().unwrap()];
        let got = plan(at(tz, (2026, 3, 28), 7, 0), &due_in(HOUR), &p2).unwrap();
        assert_eq!(raw(&got)[0], Some((0, h(1), h(4), 80)));
    }

    #[test]
    fn dst_fall_back_keeps_wall_clock_durations() {
        // Sydney: 2026-04-05 03:00 AEDT -> 02:00 AEST (a Sunday).
        let tz = chrono_tz::Australia::Sydney;
        let sat = at(tz, (2026, 4, 4), 7, 0);
        let p = plan(sat, &far(), &policy()).unwrap();
        assert_eq!(raw(&p)[0], Some((6, h(7), DAY as i32, 100)));
        let end = tz.from_local_datetime(&p.day.end).unwrap();
        assert_eq!((end - sat).num_hours(), 25, "a 25 h planning day");
        // 24.5 real hours is 06:30 on the wall clock: still inside the day.
        assert_eq!(
            plan(sat, &due_in(24 * HOUR + 1800), &policy())
                .unwrap()
                .kind,
            DayKind::Maintenance
        );

        // Berlin: 2026-10-25 03:00 CEST -> 02:00 CET (a Sunday); Sunday into
        // Monday is off-peak until the Monday morning peak.
        let tz = chrono_tz::Europe::Berlin;
        let mut p2 = policy();
        p2.day_start = parse_clock("00:00").unwrap();
        p2.slots = "1,2,3".parse().unwrap();
        let got = plan(at(tz, (2026, 10, 25), 0, 0), &far(), &p2).unwrap();
        assert_eq!(raw(&got), vec![Some((0, 0, DAY as i32, 100)), None, None]);
        let got = plan(at(tz, (2026, 10, 25), 0, 0), &due_in(HOUR), &p2).unwrap();
        assert_eq!(
            raw(&got),
            vec![Some((0, h(3), h(4), 100)), Some((0, h(13), h(3), 50)), None]
        );
    }

    #[test]
    fn utc_zone_plans_in_utc() {
        let p = plan(at(Tz::UTC, MON, 7, 0), &far(), &policy()).unwrap();
        assert_eq!(raw(&p)[0], Some((1, h(10), h(6), 100)));
    }
}
