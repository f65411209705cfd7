//! The command-line and config value parsers: no panic, and whatever parses
//! prints back to text that parses to the same value.
#![no_main]

use std::fmt::Display;
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use zcell_sched::tz::parse_zone;
use zcell_sched::zcell::bms::BmsAddress;
use zcell_sched::zcell::policy::{
    DaySet, Holidays, MaintenanceWindow, MonthSet, OwnedSlots, Peak, TimeRange, parse_clock,
    parse_soc,
};

fn round_trip<T>(s: &str)
where
    T: FromStr + Display + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = s.parse::<T>() {
        let again = value.to_string().parse::<T>().ok();
        assert_eq!(again.as_ref(), Some(&value), "{s:?} -> {value}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    round_trip::<TimeRange>(s);
    round_trip::<Peak>(s);
    round_trip::<MaintenanceWindow>(s);
    round_trip::<DaySet>(s);
    round_trip::<OwnedSlots>(s);
    if let Ok(address) = s.parse::<BmsAddress>() {
        assert!(address.status_url().starts_with("http://"));
    }
    let _ = s.parse::<MonthSet>();
    let _ = parse_clock(s);
    let _ = parse_soc(s);
    let _ = parse_zone(s);
    let _ = Holidays::default().add(s);
});
