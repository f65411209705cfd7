//! The loop's timing, in-process on tokio's paused clock, with in-memory
//! device and meter doubles.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::zendure::core::controller::tests::settings;
use crate::zendure::core::energy::HourRecord;
use crate::zendure::core::law::Command;
use crate::zendure::core::reading::DeviceReading;
use crate::zendure::core::report::{DeviceSample, MeterSample, StatusEvent};
use crate::zendure::io::device::decode;
use crate::zendure::io::meter::Reading;

#[derive(Default)]
struct Plant {
    /// Writes as (time since start, command).
    writes: Vec<(Duration, Command)>,
    reports: u32,
    house_w: i32,
    setpoint_w: i64,
    device_down: bool,
    meter_down: bool,
}

#[derive(Clone)]
struct Shared {
    plant: Arc<Mutex<Plant>>,
    start: Instant,
}

struct FakeDevice(Shared);
struct FakeMeter(Shared);

impl Device for FakeDevice {
    async fn report(&self) -> Result<DeviceReading> {
        let mut p = self.0.plant.lock().unwrap();
        p.reports += 1;
        anyhow::ensure!(!p.device_down, "cannot connect: refused");
        let (input, output, mode) = match p.setpoint_w {
            w if w > 0 => (w, 0, 1),
            w if w < 0 => (0, -w, 2),
            _ => (0, 0, 0),
        };
        decode(
            json!({"sn": "SN1", "properties": {"electricLevel": 50, "gridInputPower": input,
                "outputHomePower": output, "inputLimit": input, "outputLimit": output, "acMode": mode}})
            .to_string()
            .as_bytes(),
        )
    }

    async fn write(&self, sn: &str, command: Command) -> Result<()> {
        assert_eq!(sn, "SN1");
        let mut p = self.0.plant.lock().unwrap();
        anyhow::ensure!(!p.device_down, "cannot connect: refused");
        p.writes.push((self.0.start.elapsed(), command));
        p.setpoint_w = command.setpoint_w();
        Ok(())
    }

    fn describe(&self) -> String {
        "fake".into()
    }
}

impl Meter for FakeMeter {
    async fn read(&mut self) -> Result<Reading> {
        let p = self.0.plant.lock().unwrap();
        anyhow::ensure!(!p.meter_down, "HTTP 500");
        Ok(Reading {
            grid_w: p.house_w + p.setpoint_w as i32,
            taken: Instant::now(),
        })
    }

    fn describe(&self) -> String {
        "fake".into()
    }
}

#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<StatusEvent>>>, Arc<Mutex<Vec<HourRecord>>>);

impl Reporter for Events {
    fn status(&mut self, event: StatusEvent) {
        self.0.lock().unwrap().push(event);
    }
    fn meter(&mut self, _: MeterSample) {}
    fn device(&mut self, _: DeviceSample) {}
    fn energy(&mut self, hour: HourRecord) {
        self.1.lock().unwrap().push(hour);
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zendure-controller-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Run {
    shared: Shared,
    events: Events,
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<Result<()>>,
    schedule: PathBuf,
    status: PathBuf,
}

fn start(name: &str, schedule: serde_json::Value, house_w: i32) -> Run {
    let d = dir(name);
    let schedule_file = d.join("schedule.json");
    std::fs::write(&schedule_file, schedule.to_string()).unwrap();
    let shared = Shared {
        plant: Arc::new(Mutex::new(Plant {
            house_w,
            ..Plant::default()
        })),
        start: Instant::now(),
    };
    let events = Events::default();
    let (stop, shutdown) = watch::channel(false);
    let parts = Parts {
        device: FakeDevice(shared.clone()),
        meter: FakeMeter(shared.clone()),
        reporter: events.clone(),
        http: Http::new(Duration::from_secs(1)).unwrap(),
        source: ScheduleSource::File(schedule_file.clone()),
        schedule_refresh: Duration::from_secs(5),
        saved_schedule: d.join("state/saved.json"),
        status_file: d.join("status.json"),
        report_stats: None,
        override_file: d.join("state/override.json"),
        overrides: tokio::sync::mpsc::channel(1).1,
        statuses: None,
        prices: None,
    };
    let handle = tokio::spawn(run(settings(), parts, shutdown));
    Run {
        shared,
        events,
        stop,
        handle,
        schedule: schedule_file,
        status: d.join("status.json"),
    }
}

impl Run {
    fn writes(&self) -> Vec<(Duration, Command)> {
        self.shared.plant.lock().unwrap().writes.clone()
    }

    async fn stop(self) -> Vec<(Duration, Command)> {
        self.stop.send(true).unwrap();
        let shared = self.shared.clone();
        self.handle.await.unwrap().unwrap();
        shared.plant.lock().unwrap().writes.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn cycles_every_interval_and_writes_at_once() {
    let run = start("cycles", json!({"********0000": 300}), 0);
    tokio::time::sleep(Duration::from_millis(20_500)).await;
    let reports = run.shared.plant.lock().unwrap().reports;
    // Ticks at 0, 2, ..., 20 s.
    assert_eq!(reports, 11);
    let writes = run.writes();
    assert_eq!(writes[0].1, Command::Charge { watts: 300 });
    assert!(writes[0].0 < Duration::from_millis(100), "{writes:?}");
    let doc = crate::zendure::io::status::read(&run.status)
        .unwrap()
        .unwrap();
    assert_eq!(doc.target.setpoint_w, 300);
    assert_eq!(doc.schedule.state, "fresh");
    assert_eq!(doc.device.sn.as_deref(), Some("SN1"));
    let writes = run.stop().await;
    assert_eq!(writes.last().unwrap().1, Command::Idle);
}

#[tokio::test(start_paused = true)]
async fn reasserts_on_the_period_only() {
    let run = start("reassert", json!({"********0000": -200}), 500);
    tokio::time::sleep(Duration::from_millis(65_000)).await;
    let writes = run.writes();
    let times: Vec<u64> = writes.iter().map(|(t, _)| t.as_secs()).collect();
    // First write at 0, then every 30 s (the next tick at or after it).
    assert_eq!(times, vec![0, 30, 60], "{writes:?}");
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn net_zero_settles_and_respects_write_interval() {
    let run = start("netzero", json!({"********0000": "netzero"}), 450);
    tokio::time::sleep(Duration::from_secs(40)).await;
    run.shared.plant.lock().unwrap().house_w = 200;
    tokio::time::sleep(Duration::from_secs(40)).await;
    let writes = run.stop().await;
    let nonzero: Vec<Duration> = writes
        .iter()
        .filter(|(_, c)| !c.is_idle())
        .map(|(t, _)| *t)
        .collect();
    for w in nonzero.windows(2) {
        assert!(w[1] - w[0] >= Duration::from_secs(10), "{writes:?}");
    }
    assert_eq!(writes[0].1, Command::Discharge { watts: 450 });
    assert!(
        writes
            .iter()
            .any(|(t, c)| *t >= Duration::from_secs(40) && *c == Command::Discharge { watts: 200 }),
        "{writes:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn meter_loss_idles_within_the_timeout_and_resumes() {
    let run = start("meterloss", json!({"********0000": "netzero"}), 300);
    tokio::time::sleep(Duration::from_secs(11)).await;
    run.shared.plant.lock().unwrap().meter_down = true;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let writes = run.writes();
    let idle_at = writes
        .iter()
        .find(|(_, c)| c.is_idle())
        .map(|(t, _)| *t)
        .expect("idle after meter loss");
    // Lost at ~12 s (the first failed read), timeout 8 s.
    assert!(idle_at <= Duration::from_secs(11 + 8 + 2), "{writes:?}");
    run.shared.plant.lock().unwrap().meter_down = false;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let writes = run.stop().await;
    assert!(
        writes
            .iter()
            .any(|(t, c)| *t > idle_at && *c == Command::Discharge { watts: 300 }),
        "{writes:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn schedule_changes_are_picked_up_and_the_last_good_kept() {
    let run = start("refresh", json!({"********0000": 100}), 0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(&run.schedule, json!({"********0000": 400}).to_string()).unwrap();
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(
        run.writes()
            .iter()
            .any(|(_, c)| *c == Command::Charge { watts: 400 })
    );
    // Invalid now: the last good (400) stays in force.
    std::fs::write(&run.schedule, "{\"bad\": 1}").unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let doc = crate::zendure::io::status::read(&run.status)
        .unwrap()
        .unwrap();
    assert_eq!(doc.schedule.state, "last_good");
    assert!(doc.schedule.error.unwrap().contains("bad"));
    assert_eq!(doc.target.setpoint_w, 400);
    let events = run.events.clone();
    run.stop().await;
    let events = events.0.lock().unwrap().clone();
    assert!(matches!(events.first(), Some(StatusEvent::Start { .. })));
    assert!(matches!(events.last(), Some(StatusEvent::Stop { .. })));
    assert!(events.iter().any(|e| matches!(
        e,
        StatusEvent::Change {
            old: 100,
            new: 400,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn device_loss_is_retried_every_interval() {
    let run = start("deviceloss", json!({"********0000": 250}), 0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    run.shared.plant.lock().unwrap().device_down = true;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let reports_down = run.shared.plant.lock().unwrap().reports;
    let doc = crate::zendure::io::status::read(&run.status)
        .unwrap()
        .unwrap();
    assert!(doc.device.error.unwrap().contains("refused"));
    {
        let mut p = run.shared.plant.lock().unwrap();
        p.device_down = false;
        // The device came back reset.
        p.setpoint_w = 0;
    }
    tokio::time::sleep(Duration::from_secs(12)).await;
    let reports = run.shared.plant.lock().unwrap().reports;
    assert!(reports >= reports_down + 5);
    let writes = run.stop().await;
    let rewritten = writes
        .iter()
        .filter(|(t, c)| *t > Duration::from_secs(13) && *c == Command::Charge { watts: 250 })
        .count();
    assert!(rewritten >= 1, "{writes:?}");
}

/// The loop feeds the energy account on the wall clock it derives: over an
/// hour and a bit, the hours reported add up to the time run, but for a
/// minute the meter was silent; the hour in progress comes at the stop.
#[tokio::test(start_paused = true)]
async fn energy_hours_cover_the_run_but_a_silent_meter() {
    let run = start("energy", json!({"********0000": 300}), 0);
    tokio::time::sleep(Duration::from_secs(1800)).await;
    run.shared.plant.lock().unwrap().meter_down = true;
    tokio::time::sleep(Duration::from_secs(60)).await;
    run.shared.plant.lock().unwrap().meter_down = false;
    tokio::time::sleep(Duration::from_secs(1840)).await;
    let before_stop = run.events.1.lock().unwrap().len();
    let hours = run.events.1.clone();
    run.stop().await;
    let hours = hours.lock().unwrap().clone();
    // One hour boundary or two fall in 3700 s; each finished hour came
    // before the stop, the one in progress at it.
    assert!((1..=2).contains(&before_stop), "{hours:?}");
    assert_eq!(hours.len(), before_stop + 1, "{hours:?}");
    assert!(
        hours
            .iter()
            .all(|h| h.hour % 3600 == 0 && h.run == hours[0].run)
    );
    let covered: f64 = hours.iter().map(|h| h.sums.grid_s).sum();
    let import: f64 = hours.iter().map(|h| h.sums.import_wh).sum();
    // 3700 s run, about 62 s from the last reading before the silence to
    // the first after it uncovered.
    assert!((3630.0..3645.0).contains(&covered), "{covered} {hours:?}");
    assert!(
        (import - 300.0 * covered / 3600.0).abs() < 1.0,
        "{import} {covered}"
    );
}
