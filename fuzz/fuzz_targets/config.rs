//! The config loader and what follows from a config it accepts: the policy
//! checks and the planner, across DST changes in several zones. Any text is
//! refused with a message or planned without a panic.
#![no_main]

use chrono::{TimeZone, Timelike};
use libfuzzer_sys::fuzz_target;
use zcell_sched::zcell::battery::{Battery, Snapshot};
use zcell_sched::zcell::config::{self, Overrides};
use zcell_sched::zcell::planner;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = config::parse(text) else {
        return;
    };
    let Ok(policy) = config.policy(&Overrides::default()) else {
        return;
    };
    if planner::check_fits(&policy).is_err() {
        return;
    }
    let snapshot = |timer: f64, stripping| Snapshot {
        batteries: vec![Battery {
            id: "1".into(),
            soc: 50.0,
            stripping,
            run_timer: timer,
            run_target: 259_200.0,
        }],
    };
    let zones = [
        chrono_tz::Australia::Sydney,
        chrono_tz::Europe::Berlin,
        chrono_tz::Tz::UTC,
    ];
    // Around both 2026 DST changes in Sydney and Berlin, every few hours.
    for zone in zones {
        for (y, m, d) in [(2026, 4, 4), (2026, 10, 3), (2026, 3, 28), (2026, 10, 24)] {
            for hour in [0, 2, 3, 7, 13, 23] {
                let Some(now) = zone.with_ymd_and_hms(y, m, d, hour, 30, 0).earliest() else {
                    continue;
                };
                for (timer, stripping) in [(0.0, false), (250_000.0, false), (1.0, true)] {
                    let plan = planner::plan(now, &snapshot(timer, stripping), &policy)
                        .expect("check_fits accepted this policy");
                    assert!(plan.slots.len() == policy.slots.count());
                    assert!(
                        plan.day.start <= now.naive_local() && now.naive_local() < plan.day.end
                    );
                    assert_eq!(plan.day.start.time().minute(), policy.day_start.minute());
                }
            }
        }
    }
});
