//! The config file: the command-line settings as JSON, plus seasons and
//! holidays. Every problem is reported with the key it is in.

use std::path::{Path, PathBuf};

use std::str::FromStr;

use anyhow::{Context, Result, anyhow, ensure};
use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{Deserializer, Error as _, IgnoredAny};
use serde_json::Value;

use crate::config::{Fault, Problem, RawSeconds, Whole};
use crate::tz;
use crate::zcell::bms::BmsAddress;
use crate::zcell::dess::{Writer, parse_overlap};
use crate::zcell::policy::{
    Holidays, MaintenanceWindow, MonthSet, OwnedSlots, Peak, Policy, Rules, Season, parse_clock,
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
    /// The `homeassistant` object as written: only `run` reads it.
    pub homeassistant: Option<Value>,
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

/// The rules a season shares with the file, as written.
struct RulesText {
    peaks: Option<Vec<String>>,
    reserve_soc: Option<Whole<0, 100>>,
    maintenance_windows: Option<Vec<String>>,
}

/// Parses each item of the list at `key`.
fn items<T: FromStr<Err = anyhow::Error>>(
    key: &str,
    list: Option<Vec<String>>,
) -> Result<Option<Vec<T>>> {
    list.map(|list| list.iter().map(|s| s.parse()).collect::<Result<_>>())
        .transpose()
        .with_context(|| format!("`{key}`"))
}

impl RulesText {
    fn check(self) -> Result<RulesFile> {
        Ok(RulesFile {
            peaks: items("peaks", self.peaks)?,
            // In range already: `Whole<0, 100>` checked it.
            reserve_soc: self.reserve_soc.and_then(|n| Soc::new(n.0 as u8)),
            maintenance_windows: items("maintenance_windows", self.maintenance_windows)?,
        })
    }
}

/// The file as written; `null` stands for "the default", so the example
/// file can list every key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigText {
    bms: Option<String>,
    bms_timeout: Option<Whole<1, 300>>,
    bms_retries: Option<Whole<0, 10>>,
    slots: Option<Vec<Whole<0, 4>>>,
    day_start: Option<String>,
    peaks: Option<Vec<String>>,
    reserve_soc: Option<Whole<0, 100>>,
    maintenance_windows: Option<Vec<String>>,
    time_zone: Option<String>,
    holidays: Option<Vec<String>>,
    seasons: Option<Vec<SeasonText>>,
    status_file: Option<PathBuf>,
    writer: Option<String>,
    #[serde(deserialize_with = "overlap", default)]
    dess_overlap: Option<std::time::Duration>,
    /// The other systems' sections, each read by its own loader.
    #[serde(rename = "zendure")]
    _zendure: Option<IgnoredAny>,
    #[serde(rename = "serve")]
    _serve: Option<IgnoredAny>,
    homeassistant: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeasonText {
    months: String,
    peaks: Option<Vec<String>>,
    reserve_soc: Option<Whole<0, 100>>,
    maintenance_windows: Option<Vec<String>>,
}

/// `dess_overlap`: seconds, in the range the command line takes.
fn overlap<'de, D: Deserializer<'de>>(d: D) -> Result<Option<std::time::Duration>, D::Error> {
    Option::<RawSeconds>::deserialize(d)?
        .map(|RawSeconds(s)| {
            parse_overlap(&s.to_string()).map_err(|e| D::Error::custom(format!("{e:#}")))
        })
        .transpose()
}

/// The GX's way of naming the key at fault: `` `slots` must be ...``,
/// `` `seasons[0]`: `months` is missing``; a list item is named by its
/// list.
fn say(fault: Fault) -> String {
    let mut path = fault.path;
    if let Some(last) = path.last_mut()
        && let Some((list, _)) = last.split_once('[')
    {
        *last = list.to_string();
    }
    let named = |keys: &[String]| {
        keys.iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(": ")
    };
    match (fault.problem, path.split_last()) {
        (Problem::Unknown { known }, Some((key, []))) => {
            format!("unknown key `{key}` (known: {known})")
        }
        (Problem::Unknown { known }, Some((key, season))) => {
            format!(
                "{}: unknown key `{key}` (a season knows: {known})",
                named(season)
            )
        }
        (Problem::Missing, _) if path.last().is_some_and(|k| k == "months") => {
            format!("{} is missing (e.g. \"apr-sep\")", named(&path))
        }
        (Problem::Missing, _) => format!("{} is missing", named(&path)),
        (Problem::Bad(said), _) if path.is_empty() => said,
        (Problem::Bad(said), _) if said.starts_with("must be") => {
            format!("{} {said}", named(&path))
        }
        (Problem::Bad(said), _) => format!("{}: {said}", named(&path)),
        (Problem::Unknown { .. }, None) => unreachable!("an unknown key has a name"),
    }
}

pub fn parse(text: &str) -> Result<Config> {
    let doc: Value = serde_json::from_str(text).context("not valid JSON")?;
    ensure!(
        doc.is_object(),
        "the top level must be an object ({{...}}), not {doc}"
    );
    let file: ConfigText = crate::config::deserialize(&doc).map_err(|f| anyhow!(say(f)))?;
    let rules = RulesText {
        peaks: file.peaks,
        reserve_soc: file.reserve_soc,
        maintenance_windows: file.maintenance_windows,
    }
    .check()?;
    let mut holidays = Holidays::default();
    for day in file.holidays.unwrap_or_default() {
        holidays.add(&day).context("`holidays`")?;
    }
    Ok(Config {
        bms: file.bms.map(|b| b.parse()).transpose().context("`bms`")?,
        bms_timeout: file.bms_timeout.map(|n| n.0 as u64),
        bms_retries: file.bms_retries.map(|n| n.0 as u32),
        slots: file
            .slots
            .map(|slots| {
                let names: Vec<String> = slots.iter().map(|n| n.0.to_string()).collect();
                names.join(",").parse()
            })
            .transpose()
            .context("`slots`")?,
        day_start: file
            .day_start
            .map(|s| parse_clock(&s))
            .transpose()
            .context("`day_start`")?,
        rules,
        seasons: file
            .seasons
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, season)| season.check().with_context(|| format!("`seasons[{i}]`")))
            .collect::<Result<_>>()?,
        holidays,
        time_zone: file
            .time_zone
            .map(|z| tz::parse_zone(&z))
            .transpose()
            .context("`time_zone`")?,
        status_file: file.status_file,
        writer: file
            .writer
            .map(|w| w.parse())
            .transpose()
            .context("`writer`")?,
        dess_overlap: file.dess_overlap,
        path: None,
        homeassistant: file.homeassistant,
    })
}

impl SeasonText {
    fn check(self) -> Result<SeasonFile> {
        let months = self.months.parse::<MonthSet>().context("`months`")?;
        let rules = RulesText {
            peaks: self.peaks,
            reserve_soc: self.reserve_soc,
            maintenance_windows: self.maintenance_windows,
        }
        .check()?;
        ensure!(
            rules != RulesFile::default(),
            "season {} changes nothing: give peaks, reserve_soc or maintenance_windows",
            self.months
        );
        Ok(SeasonFile {
            name: self.months,
            months,
            rules,
        })
    }
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
                "`seasons[0]`: `months` is missing (e.g. \"apr-sep\")",
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
