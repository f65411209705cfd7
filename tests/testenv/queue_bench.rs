//! The report queue part of `scripts/bench`: a full queue of the
//! controller's reports (meter and device samples in turn, the device's as
//! a SolarFlow 800 reports them) is drained as the poster does, a batch at
//! a time, and the bytes the process hands the kernel to write
//! (`/proc/self/io` `wchar`) are counted per delivered report. Prints one
//! line; exits 1 if a report costs more than twice its own line.
//!
//! Usage: zcell-test-queue-bench [REPORTS]

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use zcell_sched::zendure::core::report::{DeviceSample, MeterSample};
use zcell_sched::zendure::io::poster::{DiskQueue, Report};

/// What the poster takes from the queue at a time.
const BATCH: usize = 100;

fn written() -> Result<u64> {
    let io = std::fs::read_to_string("/proc/self/io").context("cannot read /proc/self/io")?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|n| n.trim().parse().ok())
        .context("no wchar in /proc/self/io")
}

fn device(t: i64) -> Report {
    let properties: Map<String, Value> = serde_json::from_value(json!({
        "electricLevel": 57, "packInputPower": 0, "outputPackPower": 412,
        "outputHomePower": 0, "gridInputPower": 431, "solarInputPower": 0,
        "packState": 1, "socLimit": 0, "socStatus": 0, "chargeMaxLimit": 800,
        "inverseMaxPower": 800, "acMode": 1, "inputLimit": 431, "outputLimit": 0,
        "socSet": 1000, "minSoc": 100, "gridReverse": 1, "smartMode": 1,
        "BatVolt": 5142, "hyperTmp": 2981, "packNum": 1, "is_error": 0,
    }))
    .expect("an object");
    Report::device(&DeviceSample {
        timestamp: t,
        properties,
        pack_data: vec![json!({
            "sn": "HOA1NAN9N385989P1", "socLevel": 57, "state": 1, "power": 412,
            "maxTemp": 2981, "batcur": 80, "minVol": 320, "maxVol": 322,
        })],
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("zcell-test-queue-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool> {
    let reports: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().context("REPORTS must be a whole number")?,
        None => 20_000,
    };
    let dir = std::env::temp_dir().join(format!("zcell-queue-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).context("cannot make the bench folder")?;
    let path = dir.join("zendure-reports.jsonl");
    let mut queue = DiskQueue::open(&path, reports, u64::MAX)?;
    let before_push = written()?;
    for n in 0..reports {
        let t = 1_800_000_000 + n as i64;
        let report = if n % 2 == 0 {
            Report::meter(&MeterSample {
                timestamp: t,
                total_power: -420,
            })
        } else {
            device(t)
        };
        queue.push(&report)?;
    }
    let queued_bytes = written()? - before_push;
    let before_drain = written()?;
    let mut delivered = 0;
    while !queue.is_empty() {
        let batch = queue.front(BATCH)?;
        queue.pop(batch.len())?;
        delivered += batch.len();
    }
    let drain_bytes = written()? - before_drain;
    std::fs::remove_dir_all(&dir).context("cannot remove the bench folder")?;
    let line = queued_bytes as f64 / delivered.max(1) as f64;
    let per_report = (queued_bytes + drain_bytes) as f64 / delivered.max(1) as f64;
    // Appended once, and at most once more when a queue that never empties
    // has its delivered head cut off.
    let ok = per_report <= 2.0 * line;
    println!(
        "report queue, {delivered} reports of {line:.0} B on average queued then drained \
         {BATCH} at a time: {per_report:.0} B written per delivered report \
         ({:.1} MiB while draining), target <= {:.0} B (twice a line): {}",
        drain_bytes as f64 / 1_048_576.0,
        2.0 * line,
        if ok { "ok" } else { "MISSED" }
    );
    Ok(ok)
}
