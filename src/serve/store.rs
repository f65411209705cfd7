//! What the controller posts: status events and meter/device samples, kept
//! in SQLite for `retention` and at most `max_rows` per table, and the live
//! summary and 24 h series the page reads back.
//!
//! Parsing a posted body (`Posted::parse`) and summarising the latest rows
//! (`summary`) are pure; `Store` is the database shell around them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::overrides;
use crate::zendure::core::energy::{HourRecord, StoredHour, Sums};
use crate::zendure::core::report::StatusEvent;
use crate::zendure::io::device;

/// Unix time in seconds, fractions allowed (the controller's clock).
pub type UnixSeconds = f64;

pub fn unix(t: DateTime<Utc>) -> UnixSeconds {
    t.timestamp_millis() as f64 / 1000.0
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,          -- when it happened (controller clock)
        received REAL NOT NULL,    -- when the server stored it
        type TEXT NOT NULL,        -- start, stop, change, heartbeat, command, Rescan, ... as posted
        old_value TEXT,            -- JSON
        new_value TEXT,            -- JSON
        body TEXT NOT NULL         -- the whole posted JSON
    );
    CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
    CREATE TABLE IF NOT EXISTS meter_samples (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        received REAL NOT NULL,
        power_w REAL NOT NULL      -- net grid power, + = import
    );
    CREATE INDEX IF NOT EXISTS meter_samples_ts ON meter_samples (ts);
    CREATE TABLE IF NOT EXISTS device_samples (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        received REAL NOT NULL,
        soc REAL,                  -- electricLevel, %
        battery_w REAL,            -- + = charging, - = discharging
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS device_samples_ts ON device_samples (ts);
    CREATE TABLE IF NOT EXISTS energy_hours (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,          -- the hour's start (a whole UTC hour)
        run TEXT NOT NULL,         -- the controller run that measured it
        received REAL NOT NULL,
        import_wh REAL NOT NULL,
        export_wh REAL NOT NULL,
        charged_wh REAL NOT NULL,
        discharged_wh REAL NOT NULL,
        device_wh REAL NOT NULL,   -- AC minus battery: the device's own use
        import_without_wh REAL NOT NULL,  -- the grid with the battery's AC added back
        export_without_wh REAL NOT NULL,
        grid_s REAL NOT NULL,      -- seconds the meter readings covered
        device_s REAL NOT NULL,    -- seconds the device readings covered
        buy_eur_per_kwh REAL,      -- the hour's prices, when known
        sell_eur_per_kwh REAL,
        UNIQUE (ts, run)
    );
    CREATE TABLE IF NOT EXISTS planned_savings (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,          -- when the plan was saved
        date TEXT NOT NULL UNIQUE, -- the local day planned
        expected_saving_eur REAL NOT NULL
    );
";

const TABLES: [&str; 5] = [
    "events",
    "meter_samples",
    "device_samples",
    "energy_hours",
    "planned_savings",
];

/// The status event kinds: the reference controller's four, and `command`
/// (what was written to the device).
/// Longest event type stored (the reference's are single words).
const MAX_TYPE_CHARS: usize = 64;

/// A body the controller posted, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Posted {
    Event {
        ts: UnixSeconds,
        kind: String,
        old_value: Option<Value>,
        new_value: Option<Value>,
        body: Value,
    },
    Meter {
        ts: UnixSeconds,
        power_w: f64,
    },
    Device {
        ts: UnixSeconds,
        soc: Option<f64>,
        battery_w: Option<f64>,
        body: Value,
    },
}

/// Which data a body is: the reference posts the two kinds to one URL with
/// `?type=zendure_p1` or `?type=zendure`; without it the shape says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    Meter,
    Device,
}

impl DataKind {
    /// The reference's file for the kind, which its page names.
    pub fn reference_file(self) -> &'static str {
        match self {
            DataKind::Meter => "zendure_p1_data.json",
            DataKind::Device => "zendure_data.json",
        }
    }

    pub fn from_query(kind: Option<&str>) -> Result<Option<DataKind>> {
        Ok(match kind {
            None => None,
            Some("zendure_p1" | "meter") => Some(DataKind::Meter),
            Some("zendure" | "device") => Some(DataKind::Device),
            Some(other) => bail!("unknown type `{other}` (zendure_p1 or zendure)"),
        })
    }
}

/// How far a posted time may be ahead of the server's clock: clocks drift,
/// but a reading from the future would stay "newest" until that time.
pub const MAX_AHEAD_S: f64 = 300.0;

/// A posted time: unix seconds, or ISO-8601 as the reference's client sends
/// it (`2026-12-05T06:21:38.858184`, local time without an offset: the
/// server's zone; with an offset or `Z`: as it says).
fn timestamp(body: &Map<String, Value>, now: UnixSeconds, zone: Tz) -> Result<UnixSeconds> {
    let Some(v) = body.get("timestamp").filter(|v| !v.is_null()) else {
        return Ok(now);
    };
    let t = match v {
        Value::String(text) => iso8601(text, zone)?,
        _ => v
            .as_f64()
            .filter(|t| t.is_finite() && *t > 0.0)
            .ok_or_else(|| {
                anyhow!("`timestamp` must be unix seconds or an ISO-8601 time, not {v}")
            })?,
    };
    if t > now + MAX_AHEAD_S {
        bail!(
            "`timestamp` {v} is more than {MAX_AHEAD_S} s ahead of the server's clock ({now:.0}): \
             it takes unix seconds (not milliseconds)"
        );
    }
    Ok(t)
}

fn iso8601(text: &str, zone: Tz) -> Result<UnixSeconds> {
    let unix = |t: DateTime<chrono::Utc>| t.timestamp_micros() as f64 / 1e6;
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(unix(t.to_utc()));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .map_err(|_| anyhow!("`timestamp` {text:?} is not unix seconds or an ISO-8601 time"))?;
    // The repeated hour in autumn: the earlier; the skipped one in spring
    // cannot be a clock reading.
    let t = zone.from_local_datetime(&local).earliest().ok_or_else(|| {
        anyhow!(
            "`timestamp` {text:?} does not exist in {} (skipped by DST)",
            zone.name()
        )
    })?;
    Ok(unix(t.to_utc()))
}

fn number(props: &Map<String, Value>, key: &str) -> Option<f64> {
    props.get(key).and_then(Value::as_f64)
}

impl Posted {
    /// A status event `{type, timestamp?, oldValue?, newValue?, ...}`. Any
    /// type is taken, as the reference takes any (its client posts `Rescan`
    /// after every schedule refresh); `start` and `stop` tell whether the
    /// controller runs.
    pub fn event(body: Value, now: UnixSeconds, zone: Tz) -> Result<Posted> {
        let object = body
            .as_object()
            .ok_or_else(|| anyhow!("a status event must be a JSON object"))?;
        let kind = object
            .get("type")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| anyhow!("missing `type` (a word such as start, stop or change)"))?;
        ensure!(
            kind.chars().count() <= MAX_TYPE_CHARS && !kind.chars().any(char::is_control),
            "`type` must be at most {MAX_TYPE_CHARS} printable characters"
        );
        let field = |k: &str| object.get(k).filter(|v| !v.is_null()).cloned();
        let ts = timestamp(object, now, zone)?;
        // Refused now rather than left off the page later.
        if kind == StatusEvent::OVERRIDE {
            overrides::parse(object, ts)?;
        }
        let kind = kind.to_string();
        let (old_value, new_value) = (field("oldValue"), field("newValue"));
        // Stored with its time, as the reference stores every entry.
        let mut body = body;
        body["timestamp"] = json!(ts);
        Ok(Posted::Event {
            ts,
            kind,
            old_value,
            new_value,
            body,
        })
    }

    /// A meter sample `{timestamp, total_power}` or a device sample
    /// `{timestamp, properties, packData}`.
    pub fn data(body: Value, kind: Option<DataKind>, now: UnixSeconds, zone: Tz) -> Result<Posted> {
        let object = body
            .as_object()
            .ok_or_else(|| anyhow!("a sample must be a JSON object"))?;
        let kind = match kind {
            Some(kind) => kind,
            None if object.contains_key("total_power") => DataKind::Meter,
            None if object.contains_key("properties") => DataKind::Device,
            None => bail!("a sample holds `total_power` (meter) or `properties` (device)"),
        };
        let ts = timestamp(object, now, zone)?;
        match kind {
            DataKind::Meter => {
                let power_w = number(object, "total_power")
                    .ok_or_else(|| anyhow!("`total_power` must be a number of W"))?;
                Ok(Posted::Meter { ts, power_w })
            }
            DataKind::Device => {
                let props = object
                    .get("properties")
                    .and_then(Value::as_object)
                    .ok_or_else(|| anyhow!("`properties` must be an object"))?;
                let figures = device::sample_figures(props);
                Ok(Posted::Device {
                    ts,
                    soc: figures.soc_pct,
                    battery_w: figures.battery_w,
                    body: body.clone(),
                })
            }
        }
    }
}

impl Posted {
    /// The bytes its stored body takes (a meter sample keeps none).
    pub fn stored_bytes(&self) -> usize {
        match self {
            Posted::Event { body, .. } | Posted::Device { body, .. } => body.to_string().len(),
            Posted::Meter { .. } => 0,
        }
    }
}

/// The latest rows, as read from the database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latest {
    /// The last event of any kind: (ts, type).
    pub last_event: Option<(UnixSeconds, String)>,
    /// The last `start`, and whether a `stop` came after it.
    pub last_start: Option<UnixSeconds>,
    pub stopped_at: Option<UnixSeconds>,
    /// The last command written: the newValue of the last `change` (the
    /// setpoint in W) or `command` event.
    pub last_command: Option<(UnixSeconds, Value)>,
    pub meter: Option<(UnixSeconds, f64)>,
    pub device: Option<(UnixSeconds, Option<f64>, Option<f64>)>,
    /// When the server received the last post of any kind.
    pub last_post: Option<UnixSeconds>,
    /// The last override event: (type, ts, body).
    pub last_override: Option<(String, UnixSeconds, Value)>,
}

/// What the page shows as live status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Posted within `alive_after` and not stopped since.
    pub alive: bool,
    /// Since when it has been alive (its last start) or silent/stopped.
    pub since: Option<UnixSeconds>,
    pub last_seen: Option<UnixSeconds>,
    pub value: Option<Value>,
    pub value_since: Option<UnixSeconds>,
    pub last_command: Option<Value>,
    pub last_command_at: Option<UnixSeconds>,
    pub soc: Option<f64>,
    pub battery_w: Option<f64>,
    pub device_at: Option<UnixSeconds>,
    pub meter_w: Option<f64>,
    pub meter_at: Option<UnixSeconds>,
    /// Seconds since the meter sample was taken.
    pub meter_age: Option<f64>,
    /// The owner's override in force, if any.
    #[serde(rename = "override")]
    pub manual: Option<overrides::Shown>,
    pub now: UnixSeconds,
}

/// The live status at `now` from the latest rows and the schedule value in
/// force (with the instant it took over).
pub fn summary(
    latest: &Latest,
    in_force: Option<(Value, UnixSeconds)>,
    now: UnixSeconds,
    alive_after: Duration,
) -> Summary {
    let last_seen = latest.last_post;
    let recent = last_seen.is_some_and(|t| now - t <= alive_after.as_secs_f64());
    let stopped = latest.stopped_at.is_some();
    let alive = recent && !stopped;
    let since = if alive {
        latest.last_start.or(last_seen)
    } else {
        latest.stopped_at.or(last_seen)
    };
    Summary {
        alive,
        since,
        last_seen,
        value_since: in_force.as_ref().map(|(_, t)| *t),
        value: in_force.map(|(v, _)| v),
        last_command: latest.last_command.as_ref().map(|(_, v)| v.clone()),
        last_command_at: latest.last_command.as_ref().map(|(t, _)| *t),
        soc: latest.device.and_then(|(_, soc, _)| soc),
        battery_w: latest.device.and_then(|(_, _, w)| w),
        device_at: latest.device.map(|(t, _, _)| t),
        meter_w: latest.meter.map(|(_, w)| w),
        meter_at: latest.meter.map(|(t, _)| t),
        meter_age: latest.meter.map(|(t, _)| (now - t).max(0.0)),
        manual: overrides::in_force(
            latest
                .last_override
                .as_ref()
                .map(|(kind, ts, body)| (kind.as_str(), *ts, body)),
            now,
        ),
        now,
    }
}

/// Limits on what is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub retention: Duration,
    pub max_rows: u64,
    /// The bytes the rows may take in the database file (its free pages
    /// not counted: they are handed back a few at a time).
    pub max_bytes: u64,
}

pub struct Store {
    db: Connection,
    bounds: Bounds,
    inserts: u64,
}

/// Pruning every insert would cost a scan each; every this many is enough
/// to stay within a few rows of the bound.
const PRUNE_EVERY: u64 = 100;

/// Over the byte bound, each table loses at most this many of its oldest
/// rows per prune (and again at the next), so no insert waits on a long
/// delete.
const PRUNE_ROWS: i64 = 5_000;

/// Free pages handed back to the filesystem per prune at most (4 MiB of
/// the default 4 KiB pages): the file shrinks in bounded steps.
const VACUUM_PAGES: u32 = 1024;

impl Store {
    pub fn open(path: &Path, bounds: Bounds) -> Result<Store> {
        // SQLite would create the file 0644; its -wal and -shm take the
        // database's mode, so creating it first makes all three the owner's.
        crate::atomic::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot create the database {}", path.display()))?;
        let db = Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        // Incremental auto-vacuum lets the file shrink as rows go; it takes
        // effect on a new database at once, on an older one after a VACUUM
        // (once, before the server listens).
        db.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .and_then(|()| db.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| db.pragma_update(None, "synchronous", "NORMAL"))
            // The WAL is cut back to this after each checkpoint.
            .and_then(|()| db.pragma_update(None, "journal_size_limit", 4 << 20))
            .and_then(|()| db.execute_batch(SCHEMA))
            .with_context(|| format!("cannot set up the database {}", path.display()))?;
        let mode: i64 = db.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
        if mode != 2 {
            db.execute_batch("VACUUM")
                .with_context(|| format!("cannot vacuum the database {}", path.display()))?;
        }
        Ok(Store {
            db,
            bounds,
            inserts: 0,
        })
    }

    pub fn insert(&mut self, posted: &Posted, received: UnixSeconds) -> Result<()> {
        let text = |v: &Option<Value>| v.as_ref().map(Value::to_string);
        match posted {
            Posted::Event {
                ts,
                kind,
                old_value,
                new_value,
                body,
            } => self.db.execute(
                "INSERT INTO events (ts, received, type, old_value, new_value, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![ts, received, kind, text(old_value), text(new_value), body.to_string()],
            ),
            Posted::Meter { ts, power_w } => self.db.execute(
                "INSERT INTO meter_samples (ts, received, power_w) VALUES (?1, ?2, ?3)",
                params![ts, received, power_w],
            ),
            Posted::Device {
                ts,
                soc,
                battery_w,
                body,
            } => self.db.execute(
                "INSERT INTO device_samples (ts, received, soc, battery_w, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![ts, received, soc, battery_w, body.to_string()],
            ),
        }
        .context("cannot store the post")?;
        self.counted(received)
    }

    /// Counts an insert; prunes every `PRUNE_EVERY`.
    fn counted(&mut self, received: UnixSeconds) -> Result<()> {
        self.inserts += 1;
        if self.inserts % PRUNE_EVERY == 1 {
            self.prune(received)?;
        }
        Ok(())
    }

    /// Drops rows older than the retention, then the oldest beyond
    /// `max_rows` in each table.
    pub fn prune(&mut self, now: UnixSeconds) -> Result<()> {
        let cutoff = now - self.bounds.retention.as_secs_f64();
        for table in TABLES {
            self.db
                .execute(&format!("DELETE FROM {table} WHERE ts < ?1"), params![cutoff])
                .and_then(|_| {
                    self.db.execute(
                        &format!(
                            "DELETE FROM {table} WHERE id <= (SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET ?1)"
                        ),
                        params![i64::try_from(self.bounds.max_rows).unwrap_or(i64::MAX)],
                    )
                })
                .with_context(|| format!("cannot prune {table}"))?;
        }
        if self.used_bytes()? > self.bounds.max_bytes {
            // Over the byte bound: every table loses its oldest rows alike,
            // so the plots keep the same span of each.
            for table in TABLES {
                self.db
                    .execute(
                        &format!(
                            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id LIMIT \
                             MAX(1, MIN(?1, (SELECT COUNT(*) FROM {table}) / 10)))"
                        ),
                        params![PRUNE_ROWS],
                    )
                    .with_context(|| format!("cannot prune {table}"))?;
            }
        }
        // The pragma frees a page per step: stepped to its end.
        self.db
            .prepare(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))
            .and_then(|mut stmt| {
                let mut rows = stmt.query([])?;
                while rows.next()?.is_some() {}
                Ok(())
            })
            .context("cannot hand free database pages back")?;
        Ok(())
    }

    /// The bytes the database's pages in use take (free pages not counted).
    pub fn used_bytes(&self) -> Result<u64> {
        let pragma = |name: &str| -> Result<u64> {
            let n: i64 = self.db.pragma_query_value(None, name, |r| r.get(0))?;
            Ok(n.unsigned_abs())
        };
        Ok((pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?)
    }

    pub fn count(&self, table: &str) -> Result<u64> {
        anyhow::ensure!(TABLES.contains(&table), "no table {table}");
        let n: i64 = self
            .db
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        Ok(n.unsigned_abs())
    }

    /// The newest rows in the order the server received them, and the
    /// server's time of the last post: a client's clock, however wrong,
    /// decides neither what is current nor whether the controller is alive.
    pub fn latest(&self) -> Result<Latest> {
        let db = &self.db;
        let one_event = |sql: &str| -> rusqlite::Result<Option<(f64, Option<String>)>> {
            db.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        };
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        let last_event = db
            .query_row(
                "SELECT ts, type FROM events ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let start: Option<(i64, f64)> = db
            .query_row(
                "SELECT id, ts FROM events WHERE type = 'start' ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let last_start = start.map(|(_, t)| t);
        let stopped_at = db
            .query_row(
                "SELECT ts FROM events WHERE type = 'stop' AND id > ?1 ORDER BY id DESC LIMIT 1",
                params![start.map_or(0, |(id, _)| id)],
                |r| r.get(0),
            )
            .optional()?;
        let last_command = one_event(
            "SELECT ts, new_value FROM events WHERE type IN ('change', 'command') ORDER BY id DESC LIMIT 1",
        )?
        .map(|(t, v)| (t, json(v).unwrap_or(Value::Null)));
        let meter = db
            .query_row(
                "SELECT ts, power_w FROM meter_samples ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let device = db
            .query_row(
                "SELECT ts, soc, battery_w FROM device_samples ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let last_post = db.query_row(
            "SELECT MAX(received) FROM (SELECT MAX(received) AS received FROM events \
             UNION ALL SELECT MAX(received) FROM meter_samples \
             UNION ALL SELECT MAX(received) FROM device_samples)",
            [],
            |r| r.get(0),
        )?;
        let last_override = db
            .query_row(
                "SELECT type, ts, body FROM events WHERE type IN (?1, ?2) ORDER BY id DESC LIMIT 1",
                params![StatusEvent::OVERRIDE, StatusEvent::OVERRIDE_ENDED],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)),
            )
            .optional()?
            .map(|(kind, ts, body)| (kind, ts, json(Some(body)).unwrap_or(Value::Null)));
        Ok(Latest {
            last_event,
            last_override,
            last_start,
            stopped_at,
            last_command,
            meter,
            device,
            last_post,
        })
    }

    /// The samples since `from`, for the page's plots.
    /// The last sample of a kind as the reference serves it back: the
    /// posted document (a meter's rebuilt from what is kept: its time in
    /// `zone`, without an offset, and `total_power`), and when it arrived.
    pub fn last_sample(&self, kind: DataKind, zone: Tz) -> Result<Option<(UnixSeconds, Value)>> {
        let sample = match kind {
            DataKind::Meter => self
                .db
                .query_row(
                    "SELECT ts, received, power_w FROM meter_samples ORDER BY id DESC LIMIT 1",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, f64>(0)?,
                            r.get::<_, f64>(1)?,
                            r.get::<_, f64>(2)?,
                        ))
                    },
                )
                .optional()?
                .map(|(ts, received, power_w)| {
                    let local = DateTime::from_timestamp_micros((ts * 1e6) as i64).map(|t| {
                        t.with_timezone(&zone)
                            .naive_local()
                            .format("%Y-%m-%dT%H:%M:%S%.6f")
                            .to_string()
                    });
                    (
                        received,
                        json!({"timestamp": local, "total_power": power_w}),
                    )
                }),
            DataKind::Device => self
                .db
                .query_row(
                    "SELECT received, body FROM device_samples ORDER BY id DESC LIMIT 1",
                    [],
                    |r| Ok((r.get::<_, f64>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?
                .map(|(received, body)| {
                    (received, serde_json::from_str(&body).unwrap_or(Value::Null))
                }),
        };
        Ok(sample)
    }

    pub fn series(&self, from: UnixSeconds) -> Result<Value> {
        let rows = |sql: &str, width: usize| -> Result<Vec<Value>> {
            let mut stmt = self.db.prepare(sql)?;
            let out = stmt
                .query_map(params![from], |r| {
                    (0..width)
                        .map(|i| r.get::<_, Option<f64>>(i).map(|v| json!(v)))
                        .collect::<rusqlite::Result<Vec<Value>>>()
                        .map(Value::from)
                })?
                .collect::<rusqlite::Result<Vec<Value>>>()?;
            Ok(out)
        };
        Ok(json!({
            "meter": rows("SELECT ts, power_w FROM meter_samples WHERE ts >= ?1 ORDER BY ts", 2)?,
            "device": rows("SELECT ts, soc, battery_w FROM device_samples WHERE ts >= ?1 ORDER BY ts", 3)?,
        }))
    }

    /// One run's hour: a record sent again replaces the one before (the
    /// poster delivers at least once); prices once known are kept.
    pub fn insert_hour(
        &mut self,
        record: &HourRecord,
        prices: Option<(f64, f64)>,
        received: UnixSeconds,
    ) -> Result<()> {
        let s = &record.sums;
        self.db
            .execute(
                "INSERT INTO energy_hours (ts, run, received, import_wh, export_wh, charged_wh, \
                 discharged_wh, device_wh, import_without_wh, export_without_wh, grid_s, device_s, \
                 buy_eur_per_kwh, sell_eur_per_kwh) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                 ON CONFLICT (ts, run) DO UPDATE SET received = excluded.received, \
                 import_wh = excluded.import_wh, export_wh = excluded.export_wh, \
                 charged_wh = excluded.charged_wh, discharged_wh = excluded.discharged_wh, \
                 device_wh = excluded.device_wh, import_without_wh = excluded.import_without_wh, \
                 export_without_wh = excluded.export_without_wh, grid_s = excluded.grid_s, \
                 device_s = excluded.device_s, \
                 buy_eur_per_kwh = COALESCE(excluded.buy_eur_per_kwh, buy_eur_per_kwh), \
                 sell_eur_per_kwh = COALESCE(excluded.sell_eur_per_kwh, sell_eur_per_kwh)",
                params![
                    record.hour as f64,
                    record.run,
                    received,
                    s.import_wh,
                    s.export_wh,
                    s.charged_wh,
                    s.discharged_wh,
                    s.device_wh,
                    s.import_without_wh,
                    s.export_without_wh,
                    s.grid_s,
                    s.device_s,
                    prices.map(|p| p.0),
                    prices.map(|p| p.1),
                ],
            )
            .context("cannot store the hour")?;
        self.counted(received)
    }

    /// The price planner's expected saving for a day it planned (the last
    /// plan saved for the day counts).
    pub fn insert_planned(
        &mut self,
        date: NaiveDate,
        saving_eur: f64,
        received: UnixSeconds,
    ) -> Result<()> {
        self.db
            .execute(
                "INSERT INTO planned_savings (ts, date, expected_saving_eur) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (date) DO UPDATE SET ts = excluded.ts, \
                 expected_saving_eur = excluded.expected_saving_eur",
                params![received, date.to_string(), saving_eur],
            )
            .context("cannot store the planned saving")?;
        self.counted(received)
    }

    /// The hours from `from` (Unix seconds) on, each run's added up, in
    /// order; and the planned savings of the days from `from_date` on.
    pub fn energy(
        &self,
        from: i64,
        from_date: NaiveDate,
    ) -> Result<(Vec<StoredHour>, BTreeMap<NaiveDate, f64>)> {
        let mut stmt = self.db.prepare(
            "SELECT CAST(ts AS INTEGER), SUM(import_wh), SUM(export_wh), SUM(charged_wh), \
             SUM(discharged_wh), SUM(device_wh), SUM(import_without_wh), SUM(export_without_wh), \
             SUM(grid_s), SUM(device_s), MAX(buy_eur_per_kwh), MAX(sell_eur_per_kwh) \
             FROM energy_hours WHERE ts >= ?1 GROUP BY ts ORDER BY ts",
        )?;
        let hours = stmt
            .query_map(params![from as f64], |r| {
                let buy: Option<f64> = r.get(10)?;
                let sell: Option<f64> = r.get(11)?;
                Ok(StoredHour {
                    hour: r.get(0)?,
                    sums: Sums {
                        import_wh: r.get(1)?,
                        export_wh: r.get(2)?,
                        charged_wh: r.get(3)?,
                        discharged_wh: r.get(4)?,
                        device_wh: r.get(5)?,
                        import_without_wh: r.get(6)?,
                        export_without_wh: r.get(7)?,
                        grid_s: r.get(8)?,
                        device_s: r.get(9)?,
                    },
                    prices: buy.zip(sell),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("cannot read the hours")?;
        let mut stmt = self
            .db
            .prepare("SELECT date, expected_saving_eur FROM planned_savings WHERE date >= ?1")?;
        let planned = stmt
            .query_map(params![from_date.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
            })?
            .filter_map(|row| {
                row.map(|(date, saving)| date.parse().ok().map(|d| (d, saving)))
                    .transpose()
            })
            .collect::<rusqlite::Result<BTreeMap<_, _>>>()
            .context("cannot read the planned savings")?;
        Ok((hours, planned))
    }

    /// The last `limit` events, newest first (the reference status API's GET).
    pub fn events(&self, limit: u32, kind: Option<&str>) -> Result<Vec<Value>> {
        let mut stmt = self.db.prepare(
            "SELECT body FROM events WHERE (?1 IS NULL OR type = ?1) ORDER BY ts DESC, id DESC LIMIT ?2",
        )?;
        let out = stmt
            .query_map(params![kind, limit], |r| r.get::<_, String>(0))?
            .map(|b| Ok(serde_json::from_str(&b?).unwrap_or(Value::Null)))
            .collect::<Result<Vec<Value>>>()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_800_000_000.0;
    const ZONE: Tz = chrono_tz::Europe::Amsterdam;

    #[test]
    fn events_take_any_type_and_default_their_time() {
        let e = Posted::event(
            json!({"type": "change", "oldValue": 0, "newValue": "netzero"}),
            NOW,
            ZONE,
        )
        .unwrap();
        let Posted::Event {
            ts,
            kind,
            new_value,
            old_value,
            ..
        } = e
        else {
            panic!("not an event")
        };
        assert_eq!((ts, kind.as_str()), (NOW, "change"));
        assert_eq!(new_value, Some(json!("netzero")));
        assert_eq!(old_value, Some(json!(0)));
        // The reference's client posts `Rescan` after every schedule refresh.
        let Posted::Event { kind, .. } =
            Posted::event(json!({"type": "Rescan", "oldValue": null}), NOW, ZONE).unwrap()
        else {
            panic!("not an event")
        };
        assert_eq!(kind, "Rescan");
        for bad in [json!(""), json!("x".repeat(65)), json!("a\nb"), json!(7)] {
            assert!(
                Posted::event(json!({"type": bad}), NOW, ZONE).is_err(),
                "{bad}"
            );
        }
        let err = Posted::event(json!({"newValue": 3}), NOW, ZONE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing `type`"), "{err}");
        let err = Posted::event(json!({"type": "start", "timestamp": "soon"}), NOW, ZONE)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not unix seconds or an ISO-8601 time"),
            "{err}"
        );
        assert!(Posted::event(json!([1]), NOW, ZONE).is_err());
    }

    #[test]
    fn iso_times_as_the_reference_client_sends_them() {
        // NOW is 2027-01-15 08:00 UTC, 09:00 in Amsterdam (winter).
        let at = |t: &str| {
            let posted = Posted::data(json!({"timestamp": t, "total_power": 137}), None, NOW, ZONE);
            match posted {
                Ok(Posted::Meter { ts, .. }) => Ok(ts),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e.to_string()),
            }
        };
        assert_eq!(at("2027-01-15T09:00:00"), Ok(NOW));
        assert_eq!(at("2027-01-15T09:00:00.500000"), Ok(NOW + 0.5));
        assert_eq!(at("2027-01-15 09:00:00"), Ok(NOW));
        assert_eq!(at("2027-01-15T08:00:00Z"), Ok(NOW));
        assert_eq!(at("2027-01-15T10:00:00+02:00"), Ok(NOW));
        // The hour repeated in autumn: the first; the one skipped in spring
        // was never on a clock.
        assert_eq!(at("2026-10-25T02:30:00"), Ok(1_792_888_200.0));
        assert!(
            at("2026-03-29T02:30:00")
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            at("tomorrow")
                .unwrap_err()
                .contains("not unix seconds or an ISO-8601 time")
        );
        // An hour ahead is the future, however it is written.
        assert!(
            at("2027-01-15T10:00:00")
                .unwrap_err()
                .contains("ahead of the server's clock")
        );
    }

    #[test]
    fn times_ahead_of_the_server_are_refused() {
        let ahead = |t: Value| {
            let meter = Posted::data(json!({"timestamp": t, "total_power": 1}), None, NOW, ZONE);
            let event = Posted::event(json!({"type": "stop", "timestamp": t}), NOW, ZONE);
            match (meter, event) {
                (Ok(_), Ok(_)) => None,
                (Err(m), Err(e)) => {
                    assert_eq!(m.to_string(), e.to_string());
                    Some(m.to_string())
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(ahead(json!(NOW + MAX_AHEAD_S)), None);
        assert_eq!(ahead(json!(NOW - 86_400.0)), None);
        // Milliseconds mistaken for seconds, and the largest double.
        for t in [
            json!(NOW * 1000.0),
            json!(1e308),
            json!(NOW + MAX_AHEAD_S + 1.0),
        ] {
            let err = ahead(t.clone()).unwrap_or_else(|| panic!("{t} was taken"));
            assert!(err.contains("`timestamp`"), "{err}");
            assert!(err.contains("300 s ahead of the server's clock"), "{err}");
        }
    }

    #[test]
    fn samples_are_told_apart_by_shape_or_by_type() {
        let m = Posted::data(
            json!({"timestamp": 5, "total_power": -420}),
            None,
            NOW,
            ZONE,
        )
        .unwrap();
        assert_eq!(
            m,
            Posted::Meter {
                ts: 5.0,
                power_w: -420.0
            }
        );
        let body = json!({"timestamp": 6, "properties": {"electricLevel": 55, "outputPackPower": 0, "packInputPower": 300}, "packData": []});
        let Posted::Device { soc, battery_w, .. } = Posted::data(body, None, NOW, ZONE).unwrap()
        else {
            panic!("not a device sample")
        };
        assert_eq!((soc, battery_w), (Some(55.0), Some(-300.0)));
        let charging = json!({"properties": {"outputPackPower": 800}});
        let Posted::Device { battery_w, soc, .. } =
            Posted::data(charging, Some(DataKind::Device), NOW, ZONE).unwrap()
        else {
            panic!("not a device sample")
        };
        assert_eq!((battery_w, soc), (Some(800.0), None));
        let err = Posted::data(json!({"x": 1}), None, NOW, ZONE)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`total_power` (meter) or `properties`"),
            "{err}"
        );
        let err = Posted::data(json!({"total_power": "lots"}), None, NOW, ZONE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a number of W"), "{err}");
        assert!(DataKind::from_query(Some("price")).is_err());
        assert_eq!(
            DataKind::from_query(Some("zendure_p1")).unwrap(),
            Some(DataKind::Meter)
        );
    }

    fn alive(latest: &Latest, now: f64) -> Summary {
        summary(latest, None, now, Duration::from_secs(60))
    }

    #[test]
    fn alive_means_posted_recently_and_not_stopped() {
        let mut latest = Latest {
            last_start: Some(NOW - 500.0),
            last_post: Some(NOW - 10.0),
            meter: Some((NOW - 12.5, 300.0)),
            ..Latest::default()
        };
        let s = alive(&latest, NOW);
        assert!(s.alive);
        assert_eq!(s.since, Some(NOW - 500.0));
        assert_eq!(s.meter_age, Some(12.5));
        let silent = alive(&latest, NOW + 100.0);
        assert!(!silent.alive);
        assert_eq!(silent.since, Some(NOW - 10.0));
        latest.stopped_at = Some(NOW - 5.0);
        let stopped = alive(&latest, NOW);
        assert!(!stopped.alive);
        assert_eq!(stopped.since, Some(NOW - 5.0));
        assert!(!alive(&Latest::default(), NOW).alive);
    }

    #[test]
    fn the_live_status_shows_the_last_override_in_force() {
        let path = temp_db("override");
        let mut store = Store::open(&path, HOUR_50_ROWS).unwrap();
        let mut post = |body: Value| {
            let posted = Posted::event(body, NOW, ZONE).unwrap();
            store.insert(&posted, NOW).unwrap();
            alive(&store.latest().unwrap(), NOW).manual
        };
        let set = json!({"type": "override", "timestamp": NOW - 9.0, "mode": "discharge",
                         "watts": 250, "until": NOW + 60.0, "by": "homeassistant"});
        let shown = post(set.clone()).unwrap();
        assert_eq!((shown.watts, shown.since), (250, NOW - 9.0));
        assert_eq!(shown.until, Some(NOW + 60.0));
        // Other events (a stop too: a restart keeps it) leave it; an end
        // ends it; the last received decides.
        assert!(post(json!({"type": "stop"})).is_some());
        assert!(post(json!({"type": "override_end", "mode": "discharge"})).is_none());
        assert!(post(set).is_some());
        let latest = store.latest().unwrap();
        assert!(alive(&latest, NOW + 60.0).manual.is_none(), "expired");
        // An override that cannot be shown is refused when posted.
        let err = Posted::event(json!({"type": "override", "mode": "boost"}), NOW, ZONE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`mode`"), "{err}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    const HOUR_50_ROWS: Bounds = Bounds {
        retention: Duration::from_secs(3600),
        max_rows: 50,
        max_bytes: 1 << 30,
    };

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("zcell-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("serve.sqlite")
    }

    #[test]
    fn the_store_keeps_the_latest_and_prunes_by_age_and_count() {
        let path = temp_db("prune");
        let bounds = HOUR_50_ROWS;
        let mut store = Store::open(&path, bounds).unwrap();
        for i in 0..300 {
            let t = NOW - 300.0 + f64::from(i);
            store
                .insert(
                    &Posted::Meter {
                        ts: t,
                        power_w: f64::from(i),
                    },
                    t,
                )
                .unwrap();
        }
        store
            .insert(
                &Posted::Meter {
                    ts: NOW - 7200.0,
                    power_w: 1.0,
                },
                NOW,
            )
            .unwrap();
        store.prune(NOW).unwrap();
        assert_eq!(store.count("meter_samples").unwrap(), 50);
        let latest = store.latest().unwrap();
        assert_eq!(latest.meter, Some((NOW - 1.0, 299.0)));
        let start =
            Posted::event(json!({"type": "start", "timestamp": NOW - 20.0}), NOW, ZONE).unwrap();
        let change = Posted::event(
            json!({"type": "change", "timestamp": NOW - 10.0, "oldValue": 0, "newValue": -300}),
            NOW,
            ZONE,
        )
        .unwrap();
        store.insert(&start, NOW).unwrap();
        store.insert(&change, NOW).unwrap();
        let latest = store.latest().unwrap();
        assert_eq!(latest.last_start, Some(NOW - 20.0));
        assert_eq!(latest.last_command, Some((NOW - 10.0, json!(-300))));
        assert_eq!(latest.stopped_at, None);
        let series = store.series(NOW - 5.0).unwrap();
        assert_eq!(series["meter"].as_array().unwrap().len(), 5);
        assert_eq!(store.events(10, Some("change")).unwrap().len(), 1);
        drop(store);
        // Reopening keeps what was stored.
        let store = Store::open(&path, bounds).unwrap();
        assert_eq!(store.count("events").unwrap(), 2);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    fn device(ts: f64, filler: usize) -> Posted {
        Posted::data(
            json!({"timestamp": ts, "properties": {"electricLevel": 50, "x": "y".repeat(filler)}}),
            None,
            ts,
            ZONE,
        )
        .unwrap()
    }

    fn file_bytes(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn the_database_stays_within_its_bytes_and_gives_space_back() {
        let path = temp_db("bytes");
        let mut bounds = Bounds {
            retention: Duration::from_secs(1 << 30),
            max_rows: 1_000_000,
            max_bytes: 1 << 20,
        };
        let mut store = Store::open(&path, bounds).unwrap();
        for i in 0..4000 {
            let t = NOW + f64::from(i);
            store.insert(&device(t, 1000), t).unwrap();
        }
        store.prune(NOW + 4000.0).unwrap();
        let used = store.used_bytes().unwrap();
        // Near the bound: a tenth goes at a time, checked every 100 inserts.
        assert!(used <= (1 << 20) * 5 / 4, "{used}");
        let kept = store.count("device_samples").unwrap();
        assert!(kept < 4000 && kept > 500, "{kept}");
        let latest = store.latest().unwrap();
        assert_eq!(latest.device.unwrap().0, NOW + 3999.0);
        store
            .db
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let full = file_bytes(&path);
        drop(store);
        // A shorter retention empties the table; the file shrinks in
        // bounded steps as the prunes go on.
        bounds.retention = Duration::from_secs(1);
        let mut store = Store::open(&path, bounds).unwrap();
        store.prune(NOW + 10_000.0).unwrap();
        assert_eq!(store.count("device_samples").unwrap(), 0);
        store
            .db
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let after = file_bytes(&path);
        assert!(after < full / 2, "{full} -> {after}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn an_older_database_is_vacuumed_once_into_shrinking() {
        let path = temp_db("convert");
        let db = Connection::open(&path).unwrap();
        db.execute_batch(SCHEMA).unwrap();
        drop(db);
        let bounds = HOUR_50_ROWS;
        let store = Store::open(&path, bounds).unwrap();
        let mode: i64 = store
            .db
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn stored_bytes_count_the_body_kept() {
        assert_eq!(
            Posted::Meter {
                ts: NOW,
                power_w: 1.0
            }
            .stored_bytes(),
            0
        );
        assert!(device(NOW, 5000).stored_bytes() > 5000);
    }

    #[test]
    fn the_database_and_its_journals_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = temp_db("mode");
        let bounds = HOUR_50_ROWS;
        let mut store = Store::open(&path, bounds).unwrap();
        let meter = Posted::Meter {
            ts: NOW,
            power_w: 1.0,
        };
        store.insert(&meter, NOW).unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}: {mode:o}");
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// The bundled SQLite is built as the repository's cargo config says:
    /// no extension loading, no search or geometry modules (and so no libm).
    #[test]
    fn sqlite_has_only_what_the_server_uses() {
        let db = Connection::open_in_memory().unwrap();
        let used = |option: &str| -> bool {
            db.query_row("SELECT sqlite_compileoption_used(?1)", [option], |r| {
                r.get(0)
            })
            .unwrap()
        };
        assert!(used("OMIT_LOAD_EXTENSION"));
        for option in [
            "ENABLE_FTS3",
            "ENABLE_FTS5",
            "ENABLE_RTREE",
            "ENABLE_DBSTAT_VTAB",
            "ENABLE_STAT4",
            "SOUNDEX",
        ] {
            assert!(!used(option), "SQLITE_{option} is compiled in");
        }
    }
}
