//! Day-ahead electricity prices: the three document shapes a price source
//! may serve, and the tariff that turns a market price into what the owner
//! pays (and earns). Pure: text in, price slots out.
//!
//! Shapes (detected from the document):
//! - plain: `[{"start": RFC 3339, "price": EUR/kWh}]`;
//! - the reference system's price API: `{"today": {"00": p, .. "23": p},
//!   "tomorrow": {..}, "dates": {"today": "YYYYMMDD", "tomorrow": "YYYYMMDD"}}`,
//!   hours in the home's local time;
//! - EnergyZero's day-ahead API (`api.energyzero.nl/v1/energyprices` with
//!   `usageType=1&inclBtw=false`): `{"Prices": [{"price": p, "readingDate":
//!   "…Z"}], …}`, per kWh excluding VAT.
//!
//! Each price is the start of an interval that lasts until the next one
//! (hourly or quarter-hourly both work).

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

/// A market price from `start` until the next point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PricePoint {
    pub start: DateTime<Utc>,
    pub eur_per_kwh: f64,
}

/// What export earns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Export {
    /// Export is netted against import (Dutch "saldering"): a kWh exported
    /// earns what a kWh imported costs, taxes included.
    NetMetering,
    /// Export earns the market price minus a fee, untaxed.
    Market { fee_eur_per_kwh: f64 },
}

/// From market price to the owner's price:
/// `buy = (market + markup) × (1 + vat_percent / 100)`; `sell` per [`Export`].
/// The markup is every per-kWh charge added before VAT (energy tax, the
/// supplier's margin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tariff {
    pub vat_percent: f64,
    pub markup_eur_per_kwh: f64,
    pub export: Export,
}

impl Tariff {
    pub fn buy(&self, market_eur_per_kwh: f64) -> f64 {
        (market_eur_per_kwh + self.markup_eur_per_kwh) * (1.0 + self.vat_percent / 100.0)
    }

    pub fn sell(&self, market_eur_per_kwh: f64) -> f64 {
        match self.export {
            Export::NetMetering => self.buy(market_eur_per_kwh),
            Export::Market { fee_eur_per_kwh } => market_eur_per_kwh - fee_eur_per_kwh,
        }
    }
}

/// One interval of a day with its prices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceSlot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub market_eur_per_kwh: f64,
    pub buy_eur_per_kwh: f64,
    pub sell_eur_per_kwh: f64,
}

impl PriceSlot {
    pub fn hours(&self) -> f64 {
        (self.end - self.start).num_seconds() as f64 / 3600.0
    }
}

/// Parses a price document of any of the three shapes, sorted by start.
/// `tz` places the reference API's local hours.
pub fn parse(text: &str, tz: Tz) -> Result<Vec<PricePoint>> {
    let doc: Value = serde_json::from_str(text).context("prices: not JSON")?;
    let mut points = match &doc {
        Value::Array(items) => plain(items)?,
        Value::Object(map) if map.contains_key("Prices") => energyzero(map)?,
        Value::Object(map) if map.contains_key("today") => reference(map, tz)?,
        _ => bail!(
            "prices: expected a list of {{start, price}}, an object with \"Prices\" \
             (EnergyZero) or with \"today\"/\"tomorrow\"/\"dates\""
        ),
    };
    points.sort_by_key(|p| p.start);
    if let Some(pair) = points.windows(2).find(|w| w[0].start == w[1].start) {
        bail!("prices: two prices for {}", pair[0].start.to_rfc3339());
    }
    Ok(points)
}

fn number(value: &Value, what: &str) -> Result<f64> {
    // PHP APIs often send numbers as strings.
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if n.is_finite() => Ok(n),
        _ => bail!("{what}: not a number: {value}"),
    }
}

fn field<'a>(item: &'a Value, key: &str, what: &str) -> Result<&'a Value> {
    item.get(key)
        .with_context(|| format!("{what}: no \"{key}\""))
}

fn instant(value: &Value, what: &str) -> Result<DateTime<Utc>> {
    let text = value
        .as_str()
        .with_context(|| format!("{what}: not a string: {value}"))?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{what}: not an RFC 3339 time: {text}"))
}

fn plain(items: &[Value]) -> Result<Vec<PricePoint>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let what = format!("prices[{i}]");
            Ok(PricePoint {
                start: instant(field(item, "start", &what)?, &format!("{what}.start"))?,
                eur_per_kwh: number(field(item, "price", &what)?, &format!("{what}.price"))?,
            })
        })
        .collect()
}

fn energyzero(map: &Map<String, Value>) -> Result<Vec<PricePoint>> {
    let items = map["Prices"]
        .as_array()
        .context("prices: \"Prices\" is not a list")?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let what = format!("Prices[{i}]");
            Ok(PricePoint {
                start: instant(
                    field(item, "readingDate", &what)?,
                    &format!("{what}.readingDate"),
                )?,
                eur_per_kwh: number(field(item, "price", &what)?, &format!("{what}.price"))?,
            })
        })
        .collect()
}

fn reference(map: &Map<String, Value>, tz: Tz) -> Result<Vec<PricePoint>> {
    let dates = map.get("dates").context("prices: no \"dates\"")?;
    let mut points = Vec::new();
    for day in ["today", "tomorrow"] {
        // Tomorrow's prices appear in the afternoon; before that the day is
        // empty or absent.
        let hours = match map.get(day) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) if a.is_empty() => continue,
            Some(Value::Object(h)) => h,
            Some(other) => bail!("prices.{day}: not an object of hours: {other}"),
        };
        if hours.is_empty() {
            continue;
        }
        let date_text = dates
            .get(day)
            .and_then(Value::as_str)
            .with_context(|| format!("prices.dates.{day}: missing"))?;
        let date = NaiveDate::parse_from_str(date_text, "%Y%m%d")
            .with_context(|| format!("prices.dates.{day}: not YYYYMMDD: {date_text}"))?;
        for (hour_text, price) in hours {
            let what = format!("prices.{day}.{hour_text}");
            let hour: u32 = hour_text
                .parse()
                .ok()
                .filter(|h| *h < 24)
                .with_context(|| format!("{what}: not an hour 00-23"))?;
            let local = date.and_time(NaiveTime::from_hms_opt(hour, 0, 0).expect("hour < 24"));
            // The hour skipped when clocks go forward has no price; the
            // repeated hour when they go back gets its first occurrence.
            let start = match tz.from_local_datetime(&local) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
                LocalResult::None => continue,
            };
            points.push(PricePoint {
                start,
                eur_per_kwh: number(price, &what)?,
            });
        }
    }
    Ok(points)
}

/// The local calendar day `date` in `tz`, as UTC instants.
pub fn day_bounds(date: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let start_of = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_time(NaiveTime::MIN))
            .earliest()
            // No zone skips midnight today; if one did, the day starts an hour later.
            .unwrap_or_else(|| {
                tz.from_utc_datetime(&(d.and_time(NaiveTime::MIN) - Duration::hours(1)))
            })
            .with_timezone(&Utc)
    };
    (start_of(date), start_of(date + Duration::days(1)))
}

/// The priced intervals of the local day `date` that have not ended at
/// `now`, with the tariff applied. Each interval ends where the next point
/// starts; the last one lasts as long as the one before it (an hour if it is
/// alone). Fails when the day has no price left.
pub fn day_slots(
    points: &[PricePoint],
    date: NaiveDate,
    tz: Tz,
    tariff: &Tariff,
    now: DateTime<Utc>,
) -> Result<Vec<PriceSlot>> {
    let (day_start, day_end) = day_bounds(date, tz);
    let mut slots = Vec::new();
    for (i, point) in points.iter().enumerate() {
        let end = match points.get(i + 1) {
            Some(next) => next.start,
            None => {
                let length = match i.checked_sub(1) {
                    Some(prev) => point.start - points[prev].start,
                    None => Duration::hours(1),
                };
                point.start + length
            }
        };
        // A gap in the data: do not stretch a price over hours it never covered.
        let end = end.min(point.start + Duration::hours(1));
        let end = end.min(day_end);
        if point.start < day_start || point.start >= day_end || end <= now {
            continue;
        }
        slots.push(PriceSlot {
            start: point.start,
            end,
            market_eur_per_kwh: point.eur_per_kwh,
            buy_eur_per_kwh: tariff.buy(point.eur_per_kwh),
            sell_eur_per_kwh: tariff.sell(point.eur_per_kwh),
        });
    }
    ensure!(
        !slots.is_empty(),
        "none for {date} from {} on",
        now.with_timezone(&tz).format("%Y-%m-%d %H:%M")
    );
    Ok(slots)
}

/// Which day to plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanDay {
    /// From the current slot to midnight.
    Today,
    Tomorrow,
    Date(NaiveDate),
}

impl PlanDay {
    pub fn parse(s: &str) -> Result<PlanDay> {
        match s {
            "today" => Ok(PlanDay::Today),
            "tomorrow" => Ok(PlanDay::Tomorrow),
            _ => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(PlanDay::Date)
                .with_context(|| format!("`{s}`: expected YYYY-MM-DD, today or tomorrow")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Amsterdam;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const NET: Tariff = Tariff {
        vat_percent: 0.0,
        markup_eur_per_kwh: 0.0,
        export: Export::NetMetering,
    };

    #[test]
    fn plain_list_sorted_with_string_prices() {
        let points = parse(
            r#"[{"start":"2026-11-24T01:00:00+01:00","price":"0.2"},
                {"start":"2026-11-24T00:00:00+01:00","price":-0.05}]"#,
            Amsterdam,
        )
        .unwrap();
        assert_eq!(
            points,
            vec![
                PricePoint {
                    start: utc("2026-11-23T23:00:00Z"),
                    eur_per_kwh: -0.05
                },
                PricePoint {
                    start: utc("2026-11-24T00:00:00Z"),
                    eur_per_kwh: 0.2
                },
            ]
        );
    }

    #[test]
    fn energyzero_shape() {
        let text = r#"{"Prices":[{"price":0.31,"readingDate":"2022-12-06T23:00:00Z"},
            {"price":0.35,"readingDate":"2022-12-07T00:00:00Z"}],
            "intervalType":4,"average":0.33,
            "fromDate":"2022-12-06T23:00:00Z","tillDate":"2022-12-07T22:59:59.999Z"}"#;
        let points = parse(text, Amsterdam).unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].start, utc("2022-12-07T00:00:00Z"));
        assert_eq!(points[1].eur_per_kwh, 0.35);
    }

    #[test]
    fn reference_shape_local_hours_and_missing_tomorrow() {
        let text = r#"{"today":{"00":0.1,"01":0.2,"23":0.3},"tomorrow":[],
            "dates":{"today":"20261124","tomorrow":"20261125"}}"#;
        let points = parse(text, Amsterdam).unwrap();
        let starts: Vec<_> = points.iter().map(|p| p.start).collect();
        assert_eq!(
            starts,
            vec![
                utc("2026-11-23T23:00:00Z"),
                utc("2026-11-24T00:00:00Z"),
                utc("2026-11-24T22:00:00Z")
            ]
        );
    }

    #[test]
    fn reference_shape_on_dst_days() {
        // 29 March 2026: 02:00 does not exist in Amsterdam.
        let text = r#"{"today":{"01":0.1,"02":0.2,"03":0.3},
            "dates":{"today":"20260329"}}"#;
        let points = parse(text, Amsterdam).unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].start, utc("2026-03-29T01:00:00Z"));
        // 25 October 2026: 02:00 happens twice; the first one is priced.
        let text = r#"{"today":{"02":0.2},"dates":{"today":"20261025"}}"#;
        assert_eq!(
            parse(text, Amsterdam).unwrap()[0].start,
            utc("2026-10-25T00:00:00Z")
        );
    }

    #[test]
    fn errors_name_the_place() {
        let cases = [
            ("nope", "not JSON"),
            (r#"{"x":1}"#, "expected a list"),
            (
                r#"[{"start":"2026-11-24T00:00:00Z"}]"#,
                "prices[0]: no \"price\"",
            ),
            (
                r#"[{"start":"yesterday","price":1}]"#,
                "prices[0].start: not an RFC 3339 time",
            ),
            (
                r#"[{"start":"2026-11-24T00:00:00Z","price":"cheap"}]"#,
                "prices[0].price: not a number",
            ),
            (
                r#"{"Prices":[{"price":1}]}"#,
                "Prices[0]: no \"readingDate\"",
            ),
            (
                r#"{"today":{"24":1},"dates":{"today":"20261124"}}"#,
                "prices.today.24: not an hour",
            ),
            (
                r#"{"today":{"01":1},"dates":{}}"#,
                "prices.dates.today: missing",
            ),
            (
                r#"[{"start":"2026-11-24T00:00:00Z","price":1},{"start":"2026-11-24T00:00:00Z","price":2}]"#,
                "two prices for",
            ),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", parse(text, Amsterdam).unwrap_err());
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn tariff_formula() {
        let t = Tariff {
            vat_percent: 21.0,
            markup_eur_per_kwh: 0.15,
            export: Export::NetMetering,
        };
        assert!((t.buy(0.10) - 0.3025).abs() < 1e-12);
        assert_eq!(t.sell(0.10), t.buy(0.10));
        let t = Tariff {
            export: Export::Market {
                fee_eur_per_kwh: 0.02,
            },
            ..t
        };
        assert!((t.sell(0.10) - 0.08).abs() < 1e-12);
    }

    fn hourly(from: &str, prices: &[f64], step_minutes: i64) -> Vec<PricePoint> {
        prices
            .iter()
            .enumerate()
            .map(|(i, p)| PricePoint {
                start: utc(from) + Duration::minutes(step_minutes * i as i64),
                eur_per_kwh: *p,
            })
            .collect()
    }

    #[test]
    fn day_slots_cut_to_the_local_day_and_now() {
        // 48 hours from local midnight 24 Nov: only the 24th, from 10:30 on.
        let points = hourly("2026-11-23T23:00:00Z", &[0.1; 48], 60);
        let date = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let slots = day_slots(&points, date, Amsterdam, &NET, utc("2026-11-24T09:30:00Z")).unwrap();
        assert_eq!(slots.len(), 14);
        assert_eq!(slots[0].start, utc("2026-11-24T09:00:00Z"));
        assert_eq!(slots.last().unwrap().end, utc("2026-11-24T23:00:00Z"));
        assert!(slots.iter().all(|s| s.hours() == 1.0));
    }

    #[test]
    fn day_slots_quarter_hours_and_last_length() {
        let points = hourly("2026-11-23T23:00:00Z", &[0.1; 96], 15);
        let date = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let slots = day_slots(&points, date, Amsterdam, &NET, utc("2026-11-20T00:00:00Z")).unwrap();
        assert_eq!(slots.len(), 96);
        assert!(slots.iter().all(|s| s.hours() == 0.25));
    }

    #[test]
    fn day_slots_dst_day_has_23_hours() {
        let points = hourly("2026-03-28T23:00:00Z", &[0.1; 23], 60);
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let slots = day_slots(&points, date, Amsterdam, &NET, utc("2026-03-01T00:00:00Z")).unwrap();
        assert_eq!(slots.len(), 23);
        assert_eq!(slots.last().unwrap().end, utc("2026-03-29T22:00:00Z"));
    }

    #[test]
    fn day_slots_gap_and_missing_day() {
        let mut points = hourly("2026-11-23T23:00:00Z", &[0.1; 3], 60);
        points[2].start += Duration::hours(5);
        let date = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let slots = day_slots(&points, date, Amsterdam, &NET, utc("2026-11-20T00:00:00Z")).unwrap();
        assert_eq!(slots[1].hours(), 1.0, "a gap is not priced");
        let other = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let err = day_slots(&points, other, Amsterdam, &NET, utc("2026-11-20T00:00:00Z"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("none for 2026-11-26"), "{err}");
    }
}
