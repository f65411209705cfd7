//! The config file: the command-line settings as JSON, plus seasons and
//! holidays. Every problem is reported with the key it is in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use chrono::NaiveTime;
use chrono_tz::Tz;
use serde_json::Value;

use crate::config::{integer, list, object, string, strings};
use crate::tz;
use crate::zcell::bms::BmsAddress;
use crate::zcell::dess::{Writer, parse_overlap};
use crate::zcell::policy::{
    Holidays, MaintenanceWindow, MonthSet, OwnedSlots, Peak, Policy, Rules, Season, parse_clock,
    parse_soc,
};
use crate::zcell::slot::Soc;

/// Used when it exists and no `--config` is given.
pub const DEFAULT_PATH: &str = "/data/zcell-sched/config.json";

/// Rules a season or the whole file may set; absent ones are inherited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesFile {
    pub peaks: Option<Vec<Peak>>,
    pub reserve_soc: Option<Soc>,
    pub maintenance_windows: Option<Vec<MaintenanceWindow>>,
}

impl RulesFile {
    /// `self` where it speaks, else `lower`.
    fn or(&self, lower: &RulesFile) -> RulesFile {
        RulesFile {
            peaks: self.peaks.clone().or_else(|| lower.peaks.clone()),
            reserve_soc: self.reserve_soc.or(lower.reserve_soc),
            maintenance_windows: self
                .maintenance_windows
                .clone()
                .or_else(|| lower.maintenance_windows.clone()),
        }
    }

    /// Complete rules: `self` where it speaks, else `base`.
    fn over(&self, base: &Rules) -> Rules {
        Rules {
            peaks: self.peaks.clone().unwrap_or_else(|| base.peaks.clone()),
            reserve_soc: self.reserve_soc.unwrap_or(base.reserve_soc),
            maintenance_windows: self
                .maintenance_windows
                .clone()
                .unwrap_or_else(|| base.maintenance_windows.clone()),
        }
    }
}

/// What the command line says of the policy; it wins over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub slots: Option<OwnedSlots>,
    pub day_start: Option<NaiveTime>,
    pub rules: RulesFile,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeasonFile {
    pub name: String,
    pub months: MonthSet,
    pub rules: RulesFile,
}

/// What a config file says; `None` where it is silent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub bms: Option<BmsAddress>,
    pub bms_timeout: Option<u64>,
    pub bms_retries: Option<u32>,
    pub slots: Option<OwnedSlots>,
    pub day_start: Option<NaiveTime>,
    pub rules: RulesFile,
    pub seasons: Vec<SeasonFile>,
    pub holidays: Holidays,
    pub time_zone: Option<Tz>,
    pub status_file: Option<PathBuf>,
    pub writer: Option<Writer>,
    pub dess_overlap: Option<std::time::Duration>,
    /// The file it was read from, for messages.
    pub path: Option<PathBuf>,
}

impl Config {
    pub fn owned_slots(&self) -> OwnedSlots {
        self.slots
            .clone()
            .unwrap_or_else(|| "3,4".parse().expect("valid default"))
    }

    /// The policy: `overrides` over the file over the defaults; an override
    /// replaces the file's value in every season too. Checked for
    /// consistency; whether each day fits the owned slots is the planner's
    /// question.
    pub fn policy(&self, overrides: &Overrides) -> Result<Policy> {
        let base = overrides.rules.or(&self.rules).over(&Rules::default());
        let seasons = self
            .seasons
            .iter()
            .map(|s| Season {
                name: s.name.clone(),
                months: s.months,
                rules: overrides.rules.or(&s.rules).over(&base),
            })
            .collect();
        Policy {
            slots: overrides
                .slots
                .clone()
                .unwrap_or_else(|| self.owned_slots()),
            day_start: overrides
                .day_start
                .or(self.day_start)
                .unwrap_or(NaiveTime::from_hms_opt(7, 0, 0).expect("valid")),
            rules: base,
            seasons,
            holidays: self.holidays.clone(),
        }
        .validate()
    }
}

/// `--config FILE` must exist; without it the default path is read if present.
pub fn load(explicit: Option<&Path>) -> Result<Config> {
    let path = match explicit {
        Some(path) => path,
        None if Path::new(DEFAULT_PATH).exists() => Path::new(DEFAULT_PATH),
        None => return Ok(Config::default()),
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let in_file = || format!("config file {}", path.display());
    let config = Config {
        path: Some(path.to_path_buf()),
        ..parse(&text).with_context(in_file)?
    };
    // The file's own policy is checked now, so its errors name the file.
    config.policy(&Overrides::default()).with_context(in_file)?;
    Ok(config)
}

/// Reads the keys a season shares with the file; false if `key` is not one.
fn rules_key(rules: &mut RulesFile, key: &str, value: &Value) -> Result<bool> {
    match key {
        "peaks" => rules.peaks = Some(list(key, value, str::parse)?),
        "reserve_soc" => {
            let n = integer(key, value, 0..=100)?;
            rules.reserve_soc = Some(parse_soc(&n.to_string())?);
        }
        "maintenance_windows" => rules.maintenance_windows = Some(list(key, value, str::parse)?),
        _ => return Ok(false),
    }
    Ok(true)
}

const KEYS: &str = "bms, bms_timeout, bms_retries, slots, day_start, peaks, reserve_soc, \
                    maintenance_windows, time_zone, holidays, seasons, status_file, writer, \
                    dess_overlap, zendure, serve";
const SEASON_KEYS: &str = "months, peaks, reserve_soc, maintenance_windows";

pub fn parse(text: &str) -> Result<Config> {
    let doc: Value = serde_json::from_str(text).context("not valid JSON")?;
    let top = doc
        .as_object()
        .with_context(|| format!("the top level must be an object ({{...}}), not {doc}"))?;
    let mut config = Config::default();
    // null stands for "the default", so the example file can list every key.
    for (key, value) in top.iter().filter(|(_, v)| !v.is_null()) {
        if rules_key(&mut config.rules, key, value)? {
            continue;
        }
        match key.as_str() {
            "bms" => {
                config.bms = Some(string(key, value)?.parse().context("`bms`")?);
            }
            "bms_timeout" => config.bms_timeout = Some(integer(key, value, 1..=300)? as u64),
            "bms_retries" => config.bms_retries = Some(integer(key, value, 0..=10)? as u32),
            "slots" => {
                let list = value
                    .as_array()
                    .with_context(|| format!("`slots` must be a list like [3, 4], not {value}"))?;
                let names = list
                    .iter()
                    .map(|n| integer("slots", n, 0..=4).map(|n| n.to_string()))
                    .collect::<Result<Vec<_>>>()?;
                config.slots = Some(names.join(",").parse().context("`slots`")?);
            }
            "day_start" => {
                config.day_start = Some(parse_clock(string(key, value)?).context("`day_start`")?);
            }
            "time_zone" => {
                config.time_zone =
                    Some(tz::parse_zone(string(key, value)?).context("`time_zone`")?);
            }
            "status_file" => config.status_file = Some(PathBuf::from(string(key, value)?)),
            "writer" => config.writer = Some(string(key, value)?.parse().context("`writer`")?),
            "dess_overlap" => {
                let seconds = value
                    .as_f64()
                    .with_context(|| format!("`dess_overlap` must be seconds, not {value}"))?;
                config.dess_overlap =
                    Some(parse_overlap(&seconds.to_string()).context("`dess_overlap`")?);
            }
            // The Zendure system's section, read by its own loader.
            "zendure" => {}
            // Home Assistant over MQTT, read by `crate::homeassistant`.
            "homeassistant" => {}
            // The server's section, read by `serve`.
            "serve" => {}
            "holidays" => {
                for day in strings(key, value)? {
                    config.holidays.add(&day).context("`holidays`")?;
                }
            }
            "seasons" => {
                let list = value
                    .as_array()
                    .with_context(|| format!("`seasons` must be a list, not {value}"))?;
                for (i, season) in list.iter().enumerate() {
                    let at = format!("seasons[{i}]");
                    config
                        .seasons
                        .push(parse_season(&at, season).with_context(|| format!("`{at}`"))?);
                }
            }
            _ => bail!("unknown key `{key}` (known: {KEYS})"),
        }
    }
    Ok(config)
}

fn parse_season(at: &str, value: &Value) -> Result<SeasonFile> {
    let fields = object(at, value)?;
    let mut rules = RulesFile::default();
    let mut months = None;
    for (key, value) in fields {
        if rules_key(&mut rules, key, value)? {
            continue;
        }
        match key.as_str() {
            "months" => {
                let text = string(key, value)?;
                months = Some((
                    text.to_string(),
                    text.parse::<MonthSet>().context("`months`")?,
                ));
            }
            _ => bail!("unknown key `{key}` (a season knows: {SEASON_KEYS})"),
        }
    }
    let (name, months) = months.context("`months` is missing (e.g. \"apr-sep\")")?;
    ensure!(
        rules != RulesFile::default(),
        "season {name} changes nothing: give peaks, reserve_soc or maintenance_windows"
    );
    Ok(SeasonFile {
        name,
        months,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key() {
        let config = parse(
            r#"{
                "bms": "10.1.1.133",
                "bms_timeout": 5,
                "bms_retries": 1,
                "slots": [4, 2],
                "day_start": "06:30",
                "peaks": ["daily@17:00-20:00"],
                "reserve_soc": 90,
                "maintenance_windows": ["12:00-15:00@40"],
                "time_zone": "Australia/Hobart",
                "holidays": ["2026-12-25", "01-01"],
                "seasons": [{"months": "apr-sep", "reserve_soc": 100}],
                "status_file": "/tmp/status.json"
            }"#,
        )
        .unwrap();
        assert_eq!(config.bms.unwrap().to_string(), "http://10.1.1.133:3000");
        assert_eq!((config.bms_timeout, config.bms_retries), (Some(5), Some(1)));
        assert_eq!(config.slots.unwrap().to_string(), "2,4");
        assert_eq!(config.day_start, Some(parse_clock("06:30").unwrap()));
        assert_eq!(config.rules.peaks.unwrap().len(), 1);
        assert_eq!(config.rules.reserve_soc.unwrap().get(), 90);
        assert_eq!(config.time_zone, Some(chrono_tz::Australia::Hobart));
        assert!(
            config
                .holidays
                .contains(chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap())
        );
        assert_eq!(config.seasons[0].name, "apr-sep");
        assert_eq!(config.seasons[0].rules.reserve_soc.unwrap().get(), 100);
        assert!(config.seasons[0].rules.peaks.is_none());
        assert_eq!(
            config.status_file.unwrap(),
            PathBuf::from("/tmp/status.json")
        );
        assert_eq!(parse("{}").unwrap(), Config::default());
    }

    #[test]
    fn every_problem_names_its_key() {
        let cases = [
            ("[]", "the top level must be an object ({...}), not []"),
            ("{", "not valid JSON"),
            (r#"{"colour": 1}"#, "unknown key `colour`"),
            (r#"{"bms": 7}"#, "`bms` must be a string"),
            (r#"{"bms": "https://x"}"#, "`bms`"),
            (
                r#"{"slots": [5]}"#,
                "`slots` must be a whole number from 0 to 4",
            ),
            (r#"{"slots": [3, 3]}"#, "listed twice"),
            (r#"{"slots": "3,4"}"#, "`slots` must be a list"),
            (r#"{"day_start": "7am"}"#, "`day_start`"),
            (r#"{"peaks": ["weekdays@07:00"]}"#, "`peaks`"),
            (
                r#"{"peaks": "weekdays@07:00-10:00"}"#,
                "`peaks` must be a list",
            ),
            (
                r#"{"reserve_soc": 101}"#,
                "`reserve_soc` must be a whole number from 0 to 100",
            ),
            (
                r#"{"reserve_soc": 50.5}"#,
                "`reserve_soc` must be a whole number",
            ),
            (
                r#"{"maintenance_windows": ["13:00-16:00@150"]}"#,
                "`maintenance_windows`",
            ),
            (r#"{"time_zone": "Mars/Olympus"}"#, "`time_zone`"),
            (r#"{"holidays": ["25/12"]}"#, "`holidays`"),
            (
                r#"{"bms_timeout": 0}"#,
                "`bms_timeout` must be a whole number from 1 to 300",
            ),
            (
                r#"{"seasons": [{"reserve_soc": 80}]}"#,
                "`months` is missing",
            ),
            (r#"{"seasons": [{"months": "apr-sep"}]}"#, "changes nothing"),
            (
                r#"{"seasons": [{"months": "spring", "reserve_soc": 80}]}"#,
                "`months`",
            ),
            (
                r#"{"seasons": [{"months": "apr", "bms": "x"}]}"#,
                "a season knows",
            ),
        ];
        for (text, expected) in cases {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let text = include_str!("../../examples/config.json");
        let config = parse(text).unwrap();
        assert_eq!(config.bms, None);
        assert_eq!(config.time_zone, None);
        assert_eq!(config.slots.unwrap().to_string(), "3,4");
        assert_eq!(config.day_start, Some(parse_clock("07:00").unwrap()));
        let defaults = crate::zcell::policy::Rules::default();
        assert_eq!(config.rules.peaks.unwrap(), defaults.peaks);
        assert_eq!(config.rules.reserve_soc.unwrap(), defaults.reserve_soc);
        assert_eq!(
            config.rules.maintenance_windows.unwrap(),
            defaults.maintenance_windows
        );
        assert_eq!(
            (config.bms_timeout, config.bms_retries),
            (Some(10), Some(2))
        );
        assert_eq!(
            config.status_file.unwrap(),
            PathBuf::from(crate::zcell::record::DEFAULT_PATH)
        );
        assert!(config.seasons.is_empty());
        assert_eq!(config.writer, Some(Writer::Slots));
        assert_eq!(
            config.dess_overlap,
            Some(crate::zcell::dess::DEFAULT_OVERLAP)
        );
    }

    #[test]
    fn writer_keys() {
        let config = parse(r#"{"writer": "dess", "dess_overlap": 0.5}"#).unwrap();
        assert_eq!(config.writer, Some(Writer::Dess));
        assert_eq!(
            config.dess_overlap,
            Some(std::time::Duration::from_millis(500))
        );
        for (text, expected) in [
            (r#"{"writer": "vrm"}"#, "`writer`"),
            (r#"{"writer": 1}"#, "`writer` must be a string"),
            (r#"{"dess_overlap": -1}"#, "`dess_overlap`"),
            (r#"{"dess_overlap": 99999}"#, "`dess_overlap`"),
            (
                r#"{"dess_overlap": "10"}"#,
                "`dess_overlap` must be seconds",
            ),
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = load(Some(Path::new("/nonexistent/zcell.json"))).unwrap_err();
        assert!(format!("{err:#}").contains("cannot read the config file /nonexistent/zcell.json"));
    }
}
