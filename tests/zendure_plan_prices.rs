//! `zcell-sched zendure plan-prices` against a price file and a schedule
//! file: the owner's entries stay, a second plan replaces the first's, a
//! dry run writes nothing, a bad config or a missing price file writes
//! nothing either.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

/// Far enough ahead that the whole day is still to come.
const DATE: &str = "2031-01-14";

struct Home {
    dir: PathBuf,
}

impl Home {
    fn new(name: &str) -> Home {
        let dir =
            std::env::temp_dir().join(format!("zcell-plan-prices-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Home { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A config whose `zendure.prices` is `prices` over the defaults.
    fn config(&self, prices: Value) -> PathBuf {
        let mut section = json!({
            "source": self.path("prices.json"),
            "capacity_wh": 1920,
            "vat_percent": 21,
            "markup_eur_per_kwh": 0.13,
        });
        for (k, v) in prices.as_object().unwrap() {
            if v.is_null() {
                section.as_object_mut().unwrap().remove(k);
            } else {
                section[k] = v.clone();
            }
        }
        let config = json!({"zendure": {
            "device": "127.0.0.1:9",
            "meter": {"kind": "homewizard", "address": "127.0.0.1:9"},
            "schedule": self.path("schedule.json"),
            "time_zone": "Europe/Amsterdam",
            "state_dir": self.path("state"),
            "max_charge_w": 800,
            "max_discharge_w": 800,
            "prices": section,
        }});
        let path = self.path("config.json");
        fs::write(&path, config.to_string()).unwrap();
        path
    }

    /// Hourly prices for DATE in the plain shape.
    fn prices(&self, hourly: &[f64]) {
        let list: Vec<Value> = hourly
            .iter()
            .enumerate()
            .map(|(h, p)| json!({"start": format!("{DATE}T{h:02}:00:00+01:00"), "price": p}))
            .collect();
        fs::write(self.path("prices.json"), Value::Array(list).to_string()).unwrap();
    }

    fn schedule(&self) -> Value {
        read(&self.path("schedule.json"))
    }

    fn run(&self, extra: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_zcell-sched"))
            .args(["zendure", "plan-prices", "--config"])
            .arg(self.path("config.json"))
            .args(["--date", DATE])
            .args(extra)
            .output()
            .expect("zcell-sched runs");
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        out
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn read(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn winter() -> Vec<f64> {
    (0..24)
        .map(|h| match h {
            1..=4 => 0.06,
            7..=8 | 17..=19 => 0.32,
            _ => 0.15,
        })
        .collect()
}

fn plan_keys(schedule: &Value) -> Vec<String> {
    let day = DATE.replace('-', "");
    schedule
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with(&day))
        .cloned()
        .collect()
}

const OWNER: &str = r#"{"********0000": "netzero", "********2300": 0, "203101141800": -250}"#;

#[test]
fn owner_entries_stay_and_a_second_plan_replaces_the_first() {
    let home = Home::new("replace");
    home.config(json!({}));
    home.prices(&winter());
    fs::write(home.path("schedule.json"), OWNER).unwrap();
    let owner: Value = serde_json::from_str(OWNER).unwrap();

    let first = home.run(&[]);
    assert!(first.status.success());
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(text.contains("expected saving:"), "{text}");
    let after_first = home.schedule();
    for (k, v) in owner.as_object().unwrap() {
        assert_eq!(&after_first[k], v, "owner entry {k}");
    }
    let first_keys = plan_keys(&after_first);
    assert!(first_keys.len() > 2, "{after_first:#}");
    // The owner's 18:00 entry holds until their next entry (23:00 daily):
    // nothing is planned in between.
    assert!(
        !first_keys
            .iter()
            .any(|k| ("203101141801".."203101142300").contains(&k.as_str())),
        "{first_keys:?}"
    );
    let listed = read(&home.path("schedule.price-plan.json"));
    assert_eq!(
        listed["entries"].as_object().unwrap().len(),
        first_keys.len() - 1
    );

    // New prices: cheap at midday, dear in the morning only.
    let midday: Vec<f64> = (0..24)
        .map(|h| match h {
            6..=7 => 0.40,
            11..=13 => 0.02,
            _ => 0.18,
        })
        .collect();
    home.prices(&midday);
    let second = home.run(&["--json"]);
    assert!(second.status.success());
    let doc: Value = serde_json::from_slice(&second.stdout).expect("--json prints JSON");
    assert_eq!(doc["written"], true);
    assert_eq!(doc["replaced"], first_keys.len() - 1);
    let after_second = home.schedule();
    for (k, v) in owner.as_object().unwrap() {
        assert_eq!(&after_second[k], v, "owner entry {k}");
    }
    let entries = doc["entries"].as_object().unwrap();
    let listed = read(&home.path("schedule.price-plan.json"));
    assert_eq!(&listed["entries"], &doc["entries"]);
    // Only the owner's entries and the second plan's are left.
    assert_eq!(
        after_second.as_object().unwrap().len(),
        owner.as_object().unwrap().len() + entries.len()
    );
    for (k, v) in entries {
        assert_eq!(&after_second[k], v);
    }
    // It charges at midday, for the owner's evening discharge.
    assert!(
        matches!(entries.get("203101141100"), Some(Value::Number(w)) if w.as_i64() > Some(0)),
        "{entries:?}"
    );
}

#[test]
fn dry_run_writes_nothing() {
    let home = Home::new("dry");
    home.config(json!({}));
    home.prices(&winter());
    fs::write(home.path("schedule.json"), OWNER).unwrap();
    let out = home.run(&["--dry-run", "--json"]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["written"], false);
    assert_eq!(doc["slots"].as_array().unwrap().len(), 24);
    assert!(doc["expected_saving_eur"].as_f64().unwrap() > 0.0);
    assert_eq!(
        fs::read_to_string(home.path("schedule.json")).unwrap(),
        OWNER
    );
    assert!(!home.path("schedule.price-plan.json").exists());
}

#[test]
fn a_bad_config_exits_2_naming_the_key() {
    let home = Home::new("config");
    home.prices(&winter());
    fs::write(home.path("schedule.json"), OWNER).unwrap();
    for (prices, named) in [
        (
            json!({"capacity_wh": null}),
            "zendure.prices.capacity_wh: missing",
        ),
        (json!({"vat_percent": "21%"}), "zendure.prices.vat_percent"),
        (json!({"tax": 1}), "zendure.prices.tax: unknown key"),
    ] {
        home.config(prices);
        let out = home.run(&[]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{err}");
        assert_eq!(
            fs::read_to_string(home.path("schedule.json")).unwrap(),
            OWNER
        );
    }
}

#[test]
fn missing_prices_exit_1_and_write_nothing() {
    let home = Home::new("noprices");
    home.config(json!({}));
    fs::write(home.path("schedule.json"), OWNER).unwrap();
    let out = home.run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("prices.json"), "{err}");
    assert_eq!(
        fs::read_to_string(home.path("schedule.json")).unwrap(),
        OWNER
    );
}

#[test]
fn the_written_schedule_passes_the_schema() {
    let home = Home::new("schema");
    home.config(json!({}));
    home.prices(&winter());
    assert!(home.run(&[]).status.success());
    let schema =
        read(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/zendure/schedule.schema.json"));
    let validator = jsonschema::validator_for(&schema).unwrap();
    let written = home.schedule();
    assert!(validator.is_valid(&written), "{written:#}");
}

/// The bench's price days parse, each into one whole local day.
#[test]
fn the_kept_price_days_are_whole_days() {
    use chrono::{DateTime, NaiveDate, Utc};
    use chrono_tz::Europe::Amsterdam;
    use zcell_sched::zendure::core::prices::tariff::{self as prices, Export, Tariff};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testenv/data/prices");
    let tariff = Tariff {
        vat_percent: 21.0,
        markup_eur_per_kwh: 0.13,
        export: Export::NetMetering,
    };
    let mut days = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let date = NaiveDate::parse_from_str(&name[..10], "%Y-%m-%d").unwrap();
        let points = prices::parse(&fs::read_to_string(&path).unwrap(), Amsterdam)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let slots = prices::day_slots(&points, date, Amsterdam, &tariff, DateTime::<Utc>::MIN_UTC)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let (start, end) = prices::day_bounds(date, Amsterdam);
        assert_eq!(slots[0].start, start, "{name}");
        assert_eq!(slots.last().unwrap().end, end, "{name}");
        assert!(slots.windows(2).all(|w| w[0].end == w[1].start), "{name}");
        days += 1;
    }
    assert!(days >= 8, "{days} price days in {}", dir.display());
}
