//! The owner's override as the page shows it: read from the controller's
//! `override` and `override_end` status events. Pure: the store hands in
//! the last such event and the time.

use anyhow::{Result, anyhow, ensure};
use serde::Serialize;
use serde_json::{Map, Value};

use super::store::UnixSeconds;
use crate::zendure::core::manual::OverrideMode;
use crate::zendure::core::report::StatusEvent;

/// Longest `by` kept (a word such as `homeassistant`).
const MAX_BY_CHARS: usize = 64;

/// An override in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    pub mode: OverrideMode,
    /// For charge and discharge.
    pub watts: u32,
    /// When it ends; none: until cleared.
    pub until: Option<UnixSeconds>,
    /// Who set it.
    pub by: Option<String>,
    /// When it took over.
    pub since: UnixSeconds,
}

/// The override an `override` event's body tells of, taking over at `ts`;
/// an error names the field that is wrong.
pub fn parse(body: &Map<String, Value>, ts: UnixSeconds) -> Result<Shown> {
    let mode = body
        .get("mode")
        .and_then(Value::as_str)
        .and_then(OverrideMode::parse)
        .ok_or_else(|| {
            let names: Vec<_> = OverrideMode::ALL.iter().map(|m| m.name()).collect();
            anyhow!("an override's `mode` must be one of {}", names.join(", "))
        })?;
    let watts = match body.get("watts") {
        None | Some(Value::Null) => 0,
        Some(w) => w
            .as_u64()
            .and_then(|w| u32::try_from(w).ok())
            .ok_or_else(|| anyhow!("an override's `watts` must be a whole number of W, not {w}"))?,
    };
    let until = match body.get("until") {
        None | Some(Value::Null) => None,
        Some(t) => Some(
            t.as_f64()
                .filter(|t| t.is_finite() && *t > 0.0)
                .ok_or_else(|| {
                    anyhow!("an override's `until` must be unix seconds or null, not {t}")
                })?,
        ),
    };
    let by = match body.get("by") {
        None | Some(Value::Null) => None,
        Some(Value::String(by)) => {
            ensure!(
                !by.is_empty()
                    && by.chars().count() <= MAX_BY_CHARS
                    && !by.chars().any(char::is_control),
                "an override's `by` must be 1 to {MAX_BY_CHARS} printable characters"
            );
            Some(by.clone())
        }
        Some(other) => return Err(anyhow!("an override's `by` must be text, not {other}")),
    };
    Ok(Shown {
        mode,
        watts,
        until,
        by,
        since: ts,
    })
}

/// The override in force at `now`, from the last override event (its type,
/// time and body): none after an end, or once its `until` has passed, even
/// if the end never arrived.
pub fn in_force(last: Option<(&str, UnixSeconds, &Value)>, now: UnixSeconds) -> Option<Shown> {
    let (kind, ts, body) = last?;
    if kind != StatusEvent::OVERRIDE {
        return None;
    }
    parse(body.as_object()?, ts)
        .ok()
        .filter(|shown| shown.until.is_none_or(|until| now < until))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: f64 = 1_800_000_000.0;

    fn set(until: Value) -> Value {
        json!({"type": "override", "timestamp": NOW - 60.0, "newValue": "charge 300 W",
               "mode": "charge", "watts": 300, "until": until, "by": "homeassistant"})
    }

    #[test]
    fn an_override_shows_until_it_ends_or_expires() {
        let body = set(json!(NOW + 600.0));
        let shown = in_force(Some(("override", NOW - 60.0, &body)), NOW).unwrap();
        assert_eq!(
            shown,
            Shown {
                mode: OverrideMode::Charge,
                watts: 300,
                until: Some(NOW + 600.0),
                by: Some("homeassistant".into()),
                since: NOW - 60.0,
            }
        );
        assert_eq!(
            serde_json::to_value(&shown).unwrap(),
            json!({"mode": "charge", "watts": 300, "until": NOW + 600.0,
                   "by": "homeassistant", "since": NOW - 60.0})
        );
        // Its time ran out, though no end came.
        assert_eq!(
            in_force(Some(("override", NOW - 60.0, &body)), NOW + 600.0),
            None
        );
        assert!(in_force(Some(("override", NOW - 60.0, &body)), NOW + 599.9).is_some());
        // Ended by the owner.
        assert_eq!(in_force(Some(("override_end", NOW, &body)), NOW), None);
        assert_eq!(in_force(None, NOW), None);
        // Until cleared: shown however late.
        let lasting = set(Value::Null);
        let shown = in_force(Some(("override", NOW, &lasting)), NOW + 1e9).unwrap();
        assert_eq!(shown.until, None);
    }

    #[test]
    fn a_malformed_override_names_its_field() {
        let error = |patch: Value| {
            let mut body = set(json!(NOW));
            body.as_object_mut()
                .unwrap()
                .extend(patch.as_object().unwrap().clone());
            parse(body.as_object().unwrap(), NOW)
                .unwrap_err()
                .to_string()
        };
        assert!(error(json!({"mode": "auto"})).contains("`mode` must be one of idle, charge"));
        assert!(error(json!({"mode": null})).contains("`mode`"));
        for watts in [json!(-5), json!(1.5), json!("300"), json!(5_000_000_000u64)] {
            assert!(
                error(json!({"watts": watts})).contains("`watts`"),
                "{watts}"
            );
        }
        assert!(error(json!({"until": "soon"})).contains("`until`"));
        assert!(error(json!({"by": "x".repeat(65)})).contains("`by`"));
        assert!(error(json!({"by": "a\nb"})).contains("`by`"));
        assert!(error(json!({"by": 7})).contains("`by`"));
        // Idle needs no watts, and who set it may be left out.
        let idle = json!({"mode": "idle"});
        let shown = parse(idle.as_object().unwrap(), NOW).unwrap();
        assert_eq!((shown.watts, shown.until, shown.by), (0, None, None));
        // A malformed stored body shows nothing rather than fail the page.
        let bad = json!({"mode": "auto"});
        assert_eq!(in_force(Some(("override", NOW, &bad)), NOW), None);
    }
}
