//! An override from the owner (Home Assistant): a mode, and for charge and
//! discharge a power, that replaces the schedule's value until a moment.
//! The schedule stays untouched; the override ends by itself.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::zendure::core::schedule::ScheduleValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverrideMode {
    #[serde(rename = "idle")]
    Idle,
    #[serde(rename = "charge")]
    Charge,
    #[serde(rename = "discharge")]
    Discharge,
    #[serde(rename = "netzero")]
    NetZero,
    #[serde(rename = "netzero+")]
    NetZeroPlus,
}

impl OverrideMode {
    pub const ALL: [OverrideMode; 5] = [
        OverrideMode::Idle,
        OverrideMode::Charge,
        OverrideMode::Discharge,
        OverrideMode::NetZero,
        OverrideMode::NetZeroPlus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OverrideMode::Idle => "idle",
            OverrideMode::Charge => "charge",
            OverrideMode::Discharge => "discharge",
            OverrideMode::NetZero => "netzero",
            OverrideMode::NetZeroPlus => "netzero+",
        }
    }

    pub fn parse(text: &str) -> Option<OverrideMode> {
        Self::ALL.into_iter().find(|m| m.name() == text)
    }

    /// The value in force while the override lasts.
    pub fn value(self, watts: u32) -> ScheduleValue {
        let w = i32::try_from(watts).unwrap_or(i32::MAX);
        match self {
            OverrideMode::Idle => ScheduleValue::IDLE,
            OverrideMode::Charge => ScheduleValue::Watts(w),
            OverrideMode::Discharge => ScheduleValue::Watts(-w),
            OverrideMode::NetZero => ScheduleValue::NetZero,
            OverrideMode::NetZeroPlus => ScheduleValue::NetZeroPlus,
        }
    }
}

impl std::fmt::Display for OverrideMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An override in force, as the status and the state file hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub mode: OverrideMode,
    /// For charge and discharge.
    pub watts: u32,
    /// When it ends; none when the schedule has no change ahead and no
    /// duration was asked for: it lasts until cleared.
    pub until: Option<DateTime<Utc>>,
}

impl Override {
    /// Who sets overrides: Home Assistant is the only way in.
    pub const SET_BY: &'static str = "homeassistant";

    pub fn value(&self) -> ScheduleValue {
        self.mode.value(self.watts)
    }

    pub fn ended(&self, now: DateTime<Utc>) -> bool {
        self.until.is_some_and(|until| now >= until)
    }
}

/// `charge 300 W until 2026-12-05 12:00:00 UTC`, `netzero until cleared`.
impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.mode {
            OverrideMode::Charge | OverrideMode::Discharge => {
                write!(f, "{} {} W", self.mode, self.watts)?
            }
            mode => write!(f, "{mode}")?,
        }
        match self.until {
            Some(until) => write!(f, " until {}", until.format("%Y-%m-%d %H:%M:%S UTC")),
            None => f.write_str(" until cleared"),
        }
    }
}

/// What the owner asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideRequest {
    /// `lasting` none: until the schedule's next change.
    Set {
        mode: OverrideMode,
        watts: u32,
        lasting: Option<Duration>,
    },
    /// Back to the schedule (`auto`).
    Clear,
}

impl OverrideRequest {
    /// The override this asks for at `now`, given when the schedule
    /// changes next.
    pub fn resolve(
        self,
        now: DateTime<Utc>,
        next_change: Option<DateTime<Utc>>,
    ) -> Option<Override> {
        match self {
            OverrideRequest::Clear => None,
            OverrideRequest::Set {
                mode,
                watts,
                lasting,
            } => Some(Override {
                mode,
                watts,
                until: match lasting {
                    Some(d) => TimeDelta::from_std(d)
                        .ok()
                        .and_then(|d| now.checked_add_signed(d)),
                    None => next_change,
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn modes_map_to_values() {
        assert_eq!(OverrideMode::Idle.value(500), ScheduleValue::IDLE);
        assert_eq!(OverrideMode::Charge.value(500), ScheduleValue::Watts(500));
        assert_eq!(
            OverrideMode::Discharge.value(500),
            ScheduleValue::Watts(-500)
        );
        assert_eq!(OverrideMode::NetZero.value(500), ScheduleValue::NetZero);
        assert_eq!(
            OverrideMode::NetZeroPlus.value(0),
            ScheduleValue::NetZeroPlus
        );
        for mode in OverrideMode::ALL {
            assert_eq!(OverrideMode::parse(mode.name()), Some(mode));
            assert_eq!(
                serde_json::to_value(mode).unwrap(),
                serde_json::json!(mode.name())
            );
        }
        assert_eq!(OverrideMode::parse("auto"), None);
    }

    #[test]
    fn a_duration_wins_over_the_next_change() {
        let now = at("2026-12-05T10:00:00Z");
        let next = Some(at("2026-12-05T12:00:00Z"));
        let set = |lasting| OverrideRequest::Set {
            mode: OverrideMode::Charge,
            watts: 300,
            lasting,
        };
        let o = set(Some(Duration::from_secs(90)))
            .resolve(now, next)
            .unwrap();
        assert_eq!(o.until, Some(at("2026-12-05T10:01:30Z")));
        assert!(!o.ended(at("2026-12-05T10:01:29Z")));
        assert!(o.ended(at("2026-12-05T10:01:30Z")));
        let o = set(None).resolve(now, next).unwrap();
        assert_eq!(o.until, next);
        let o = set(None).resolve(now, None).unwrap();
        assert_eq!(o.until, None);
        assert!(!o.ended(at("2099-01-01T00:00:00Z")));
        assert_eq!(o.to_string(), "charge 300 W until cleared");
        let o = Override {
            mode: OverrideMode::NetZeroPlus,
            watts: 300,
            until: next,
        };
        assert_eq!(o.to_string(), "netzero+ until 2026-12-05 12:00:00 UTC");
        assert_eq!(OverrideRequest::Clear.resolve(now, next), None);
    }
}
