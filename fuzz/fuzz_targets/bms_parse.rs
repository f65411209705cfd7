//! The BMS status parser: any bytes give a snapshot the planner can trust
//! or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zcell_sched::zcell::bms;

fuzz_target!(|data: &[u8]| {
    if let Ok(snapshot) = bms::parse(data) {
        assert!(!snapshot.batteries.is_empty());
        for b in &snapshot.batteries {
            assert!((0.0..=100.0).contains(&b.soc));
            assert!(b.run_timer.is_finite() && b.run_timer >= 0.0);
            assert!(b.run_target.is_finite() && b.run_target >= 0.0);
            assert!(b.seconds_to_maintenance().is_finite());
        }
    }
});
