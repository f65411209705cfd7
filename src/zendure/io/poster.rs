//! The controller's reports, posted to a server (`zcell-sched serve`, or
//! the reference PHP host): status events to `status_url`, meter and device
//! samples to `data_url`, in the reference wire format.
//!
//! The controller's calls never wait: `HttpReporter` hands each report to a
//! task that posts it. While the server answers, nothing touches the disk
//! (a Pi's SD card must not be written every few seconds); when it does
//! not, reports queue in a file, in order, up to `max_queued` reports and
//! `max_queued_bytes`; when full, the oldest tenth goes and is counted in `PosterStats::dropped`. When the
//! server is back the queue is delivered oldest first, and new reports wait
//! behind it, so the server sees them in order and nothing within the bound
//! is lost.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::atomic;
use crate::zendure::config::ZendureConfig;
use crate::zendure::core::energy::HourRecord;
use crate::zendure::core::manual::Override;
pub use crate::zendure::core::report::PosterStats;
use crate::zendure::core::report::{DeviceSample, LogReporter, MeterSample, Reporter, StatusEvent};
use crate::zendure::io::http::Http;

/// Which URL a report goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Status,
    Meter,
    Device,
    Energy,
}

/// One report as posted (and as queued, one JSON line each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub to: Target,
    pub body: Value,
}

impl Report {
    /// The reference's status body: `{type, timestamp, oldValue?, newValue?}`.
    pub fn status(event: &StatusEvent) -> Report {
        let body = match event {
            StatusEvent::Start { timestamp } => json!({"type": "start", "timestamp": timestamp}),
            StatusEvent::Stop { timestamp } => json!({"type": "stop", "timestamp": timestamp}),
            StatusEvent::Change {
                old,
                new,
                timestamp,
            } => {
                json!({"type": "change", "timestamp": timestamp, "oldValue": old, "newValue": new})
            }
            // The reference's server keeps only `oldValue` and `newValue`
            // and shows them as text: the override said in words there, and
            // in fields that `zcell-sched serve` reads.
            StatusEvent::Override { manual, timestamp } => {
                override_body(StatusEvent::OVERRIDE, "newValue", manual, *timestamp)
            }
            StatusEvent::OverrideEnded { manual, timestamp } => {
                override_body(StatusEvent::OVERRIDE_ENDED, "oldValue", manual, *timestamp)
            }
        };
        Report {
            to: Target::Status,
            body,
        }
    }

    pub fn meter(sample: &MeterSample) -> Report {
        Report {
            to: Target::Meter,
            body: json!(sample),
        }
    }

    pub fn device(sample: &DeviceSample) -> Report {
        Report {
            to: Target::Device,
            body: json!(sample),
        }
    }

    pub fn energy(hour: &HourRecord) -> Report {
        Report {
            to: Target::Energy,
            body: json!(hour),
        }
    }
}

/// An override event: the override in words under `said` (`newValue` as
/// it starts, `oldValue` as it ends), and its mode, watts, end (unix
/// seconds, null: until cleared) and who set it.
fn override_body(kind: &str, said: &str, manual: &Override, timestamp: i64) -> Value {
    let mut body = json!({
        "type": kind,
        "timestamp": timestamp,
        "mode": manual.mode,
        "watts": manual.watts,
        "until": manual.until.map(|t| t.timestamp()),
        "by": Override::SET_BY,
    });
    body[said] = json!(manual.to_string());
    body
}

/// Where and how to post.
#[derive(Debug, Clone, PartialEq)]
pub struct PosterConfig {
    pub status_url: Option<String>,
    /// The reference data API tells the kinds apart by `?type=`, which is
    /// added here (`zendure_p1` for the meter, `zendure` for the device,
    /// `zendure_energy` for the hours, which only `zcell-sched serve` takes).
    pub data_url: Option<String>,
    /// Sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// The queue file (in the persistent state folder).
    pub queue_file: PathBuf,
    pub max_queued: usize,
    /// The bytes the queued reports may take.
    pub max_queued_bytes: u64,
    pub http_timeout: Duration,
    /// How long to wait after a failed post before trying the queue again.
    pub retry: Duration,
}

impl PosterConfig {
    fn url(&self, to: Target) -> Option<String> {
        let with_type = |url: &String, kind: &str| {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}type={kind}")
        };
        match to {
            Target::Status => self.status_url.clone(),
            Target::Meter => self.data_url.as_ref().map(|u| with_type(u, "zendure_p1")),
            Target::Device => self.data_url.as_ref().map(|u| with_type(u, "zendure")),
            Target::Energy => self
                .data_url
                .as_ref()
                .map(|u| with_type(u, "zendure_energy")),
        }
    }
}

/// The bounded on-disk queue: one JSON line per report, oldest first,
/// appended to `path`; `<path>.cursor` holds the byte offset of the first
/// report not yet delivered.
///
/// Delivering a batch rewrites only the cursor (21 bytes in place), never
/// the reports: an SD card sees each report written once. A queue drained
/// to the end is removed; one that never empties (reports arriving as fast
/// as they go) has its delivered head cut off once that head is as large
/// as the queue's bound, so the file stays under twice `max_bytes` and each
/// report is written at most once more. Delivery is at least once: a
/// report whose delivery the cursor has not recorded yet (a crash between
/// the post and the cursor's write, or a power cut before the cursor
/// reached the card) is posted again on the next run.
pub struct DiskQueue {
    path: PathBuf,
    cursor_path: PathBuf,
    max: usize,
    max_bytes: u64,
    /// Where the first report not delivered starts.
    start: u64,
    /// The file's length: where the next report goes.
    end: u64,
    len: usize,
}

/// The delivered head is cut off only once it is at least this large (or
/// the queue's bound, if larger), so a short queue is never rewritten.
const COMPACT_AT: u64 = 64 * 1024;

impl DiskQueue {
    /// Opens the queue left by an earlier run, if any, making its folder.
    /// `max` bounds the reports kept, `max_bytes` the bytes they take.
    pub fn open(path: &Path, max: usize, max_bytes: u64) -> Result<DiskQueue> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        // A line cut short by a crash mid-append would swallow the next
        // one appended: it goes.
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len() {
            bytes.truncate(whole);
            fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(whole as u64))
                .with_context(|| format!("cannot cut the last line of {}", path.display()))?;
        }
        let cursor_path = PathBuf::from(format!("{}.cursor", path.display()));
        // A cursor that does not point at the start of a line (lost, torn,
        // or from another file) delivers the whole file again rather than
        // skip a report.
        let start = fs::read_to_string(&cursor_path)
            .ok()
            .and_then(|t| t.trim().parse::<usize>().ok())
            .filter(|&at| at == 0 || (at <= bytes.len() && bytes[at - 1] == b'\n'))
            .unwrap_or(0);
        let len = Self::parse(&bytes[start..], usize::MAX).len();
        Ok(DiskQueue {
            path: path.to_path_buf(),
            cursor_path,
            max: max.max(10),
            max_bytes,
            start: start as u64,
            end: bytes.len() as u64,
            len,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Up to `n` reports from `bytes` (whole lines), each with the offset
    /// just past its line. A line that does not parse (cut by a crash before
    /// it was whole) is skipped, and its bytes go with the next report.
    fn parse(bytes: &[u8], n: usize) -> Vec<(Report, u64)> {
        let mut out = Vec::new();
        let mut at = 0;
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            if out.len() == n {
                break;
            }
            at += line.len() as u64;
            if let Ok(report) = serde_json::from_slice(line) {
                out.push((report, at));
            }
        }
        out
    }

    /// The file from `at` to its end.
    fn read_from(&self, at: u64) -> Result<Vec<u8>> {
        use std::io::{Read as _, Seek as _};
        let mut bytes = Vec::new();
        fs::File::open(&self.path)
            .and_then(|mut file| {
                file.seek(std::io::SeekFrom::Start(at))?;
                file.read_to_end(&mut bytes)
            })
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        Ok(bytes)
    }

    /// The first `n` reports not delivered, with the offsets past them.
    fn head(&self, n: usize) -> Result<Vec<(Report, u64)>> {
        let bytes = self.read_from(self.start)?;
        Ok(Self::parse(&bytes, n)
            .into_iter()
            .map(|(r, at)| (r, self.start + at))
            .collect())
    }

    /// Appends a report; returns how many old ones were dropped for room.
    pub fn push(&mut self, report: &Report) -> Result<u64> {
        let mut line = serde_json::to_string(report)?;
        line.push('\n');
        let size = line.len() as u64;
        if size > self.max_bytes {
            bail!(
                "a report of {size} bytes is larger than the queue may hold (report_queue_max_bytes {})",
                self.max_bytes
            );
        }
        let mut dropped = 0;
        while self.len >= self.max || self.end - self.start + size > self.max_bytes {
            // A tenth at a time, so a long outage moves the cursor once per
            // tenth of the queue, not on every report.
            let cut = (self.len / 10).max(1);
            dropped += cut as u64;
            self.pop(cut)?;
        }
        atomic::options()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .with_context(|| format!("cannot append to {}", self.path.display()))?;
        self.end += size;
        self.len += 1;
        Ok(dropped)
    }

    pub fn front(&self, n: usize) -> Result<Vec<Report>> {
        Ok(self.head(n)?.into_iter().map(|(r, _)| r).collect())
    }

    /// Marks the `n` oldest reports delivered.
    pub fn pop(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        if n >= self.len {
            for file in [&self.path, &self.cursor_path] {
                match fs::remove_file(file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("cannot remove {}", file.display()));
                    }
                    _ => {}
                }
            }
            (self.start, self.end, self.len) = (0, 0, 0);
            return Ok(());
        }
        let Some((_, past)) = self.head(n)?.pop() else {
            bail!("{} holds fewer reports than counted", self.path.display());
        };
        self.start = past;
        self.len -= n;
        if self.start >= COMPACT_AT.max(self.max_bytes) {
            self.compact()
        } else {
            self.write_cursor()
        }
    }

    /// Rewrites the cursor in place: fixed width, so a write never leaves
    /// a longer old number's tail behind.
    fn write_cursor(&self) -> Result<()> {
        use std::os::unix::fs::FileExt as _;
        atomic::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.cursor_path)
            .and_then(|f| f.write_all_at(format!("{:020}\n", self.start).as_bytes(), 0))
            .with_context(|| format!("cannot write {}", self.cursor_path.display()))
    }

    /// Cuts the delivered head off. The cursor goes to 0 first: a crash
    /// before the file is replaced delivers the head again rather than
    /// skip reports the shorter file would hold at the old offset.
    fn compact(&mut self) -> Result<()> {
        let rest = self.read_from(self.start)?;
        let start = std::mem::replace(&mut self.start, 0);
        self.write_cursor()?;
        if let Err(e) = atomic::write(&self.path, &rest) {
            self.start = start;
            self.write_cursor()?;
            return Err(e);
        }
        self.end = rest.len() as u64;
        Ok(())
    }
}

/// How a post ended.
enum Posted {
    Delivered,
    /// The server refused this report for good; retrying cannot help.
    Rejected(String),
    /// Try again later (no answer, 5xx, auth, rate limit).
    Failed(String),
}

struct Sender {
    config: PosterConfig,
    http: Http,
    queue: DiskQueue,
    stats: PosterStats,
    publish: watch::Sender<PosterStats>,
}

/// Reports at a time taken from the queue file per read.
const BATCH: usize = 100;

impl Sender {
    async fn post(&self, report: &Report) -> Posted {
        let Some(url) = self.config.url(report.to) else {
            // No URL for this kind: nothing to deliver, nothing to keep.
            return Posted::Delivered;
        };
        let mut request = self
            .http
            .client()
            .post(&url)
            .header("Content-Type", "application/json")
            .body(report.body.to_string());
        if let Some(token) = &self.config.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => Posted::Delivered,
            Ok(r) => {
                let code = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                let why = format!(
                    "{url}: HTTP {code} {}",
                    text.chars().take(200).collect::<String>()
                );
                match code {
                    401 | 403 | 408 | 429 => Posted::Failed(why),
                    400..=499 => Posted::Rejected(why),
                    _ => Posted::Failed(why),
                }
            }
            Err(e) => Posted::Failed(format!(
                "{url}: {}",
                crate::http::brief(&e, self.config.http_timeout)
            )),
        }
    }

    fn note(&mut self, outcome: &Posted) {
        match outcome {
            Posted::Delivered => {
                self.stats.delivered += 1;
                if self.stats.last_error.take().is_some() {
                    tracing::info!("reports: the server answers again");
                }
            }
            Posted::Rejected(why) => {
                self.stats.rejected += 1;
                tracing::warn!("reports: the server refused one: {why}");
            }
            Posted::Failed(why) => {
                if self.stats.last_error.is_none() {
                    tracing::warn!("reports: cannot post, queueing them on disk: {why}");
                }
                self.stats.last_error = Some(why.clone());
            }
        }
    }

    fn publish(&mut self) {
        self.stats.queued = self.queue.len();
        self.publish.send_replace(self.stats.clone());
    }

    fn enqueue(&mut self, report: &Report) {
        match self.queue.push(report) {
            Ok(dropped) => self.stats.dropped += dropped,
            Err(e) => {
                // The disk refused too: this report is lost; say so once each.
                self.stats.dropped += 1;
                tracing::warn!("reports: {e:#}");
            }
        }
    }

    /// Delivers the queue oldest first; stops at the first failure.
    /// Returns true when the queue is empty.
    async fn drain(&mut self) -> bool {
        while !self.queue.is_empty() {
            let batch = match self.queue.front(BATCH) {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!("reports: {e:#}");
                    return false;
                }
            };
            let mut done = 0;
            let mut blocked = false;
            for report in &batch {
                let outcome = self.post(report).await;
                self.note(&outcome);
                if matches!(outcome, Posted::Failed(_)) {
                    blocked = true;
                    break;
                }
                done += 1;
            }
            if let Err(e) = self.queue.pop(done) {
                tracing::warn!("reports: {e:#}");
                return false;
            }
            self.publish();
            if blocked {
                return false;
            }
        }
        true
    }

    /// Handles one new report: straight to the server when nothing waits,
    /// else behind the queue.
    async fn take(&mut self, report: Report) {
        if self.queue.is_empty() {
            let outcome = self.post(&report).await;
            self.note(&outcome);
            if matches!(outcome, Posted::Failed(_)) {
                self.enqueue(&report);
            }
        } else {
            self.enqueue(&report);
        }
        self.publish();
    }

    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Report>) {
        // Whatever an earlier run left queued goes first.
        let mut clear = self.drain().await;
        loop {
            let next = if clear {
                inbox.recv().await
            } else {
                match tokio::time::timeout(self.config.retry, inbox.recv()).await {
                    Ok(next) => next,
                    Err(_) => {
                        clear = self.drain().await;
                        continue;
                    }
                }
            };
            let Some(report) = next else { break };
            self.take(report).await;
            clear = self.queue.is_empty();
        }
        // Closed: one last try, then whatever is left stays on disk for
        // the next run.
        self.drain().await;
        self.publish();
    }
}

/// The controller's `Reporter` that posts over HTTP. Dropping it (with
/// the controller's parts) closes the inbox; `PosterHandle::finish` then
/// waits for the last posts.
pub struct HttpReporter {
    inbox: mpsc::UnboundedSender<Report>,
}

/// What stays outside the controller: the poster's stats and its end.
pub struct PosterHandle {
    stats: watch::Receiver<PosterStats>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpReporter {
    /// Opens the queue file and starts the posting task on the current
    /// runtime.
    pub fn start(config: PosterConfig) -> Result<(HttpReporter, PosterHandle)> {
        let queue = DiskQueue::open(
            &config.queue_file,
            config.max_queued,
            config.max_queued_bytes,
        )?;
        let http = Http::new(config.http_timeout).context("reports")?;
        let stats = PosterStats {
            queued: queue.len(),
            ..PosterStats::default()
        };
        let (publish, watch) = watch::channel(stats.clone());
        let (inbox, rx) = mpsc::unbounded_channel();
        let sender = Sender {
            config,
            http,
            queue,
            stats,
            publish,
        };
        let task = tokio::spawn(sender.run(rx));
        Ok((HttpReporter { inbox }, PosterHandle { stats: watch, task }))
    }

    fn send(&mut self, report: Report) {
        // The task ends only after the inbox closes, so this cannot fail
        // while `self` lives.
        let _ = self.inbox.send(report);
    }
}

impl PosterHandle {
    pub fn stats(&self) -> PosterStats {
        self.stats.borrow().clone()
    }

    /// A receiver that wakes on every change of the stats.
    pub fn watch(&self) -> watch::Receiver<PosterStats> {
        self.stats.clone()
    }

    /// Once the reporter is dropped: tries once more to deliver what waits
    /// (each post bounded by `http_timeout`) and leaves the rest queued on
    /// disk for the next run.
    pub async fn finish(self) -> PosterStats {
        let _ = self.task.await;
        self.stats.borrow().clone()
    }
}

impl Reporter for HttpReporter {
    fn status(&mut self, event: StatusEvent) {
        self.send(Report::status(&event));
    }

    fn meter(&mut self, sample: MeterSample) {
        self.send(Report::meter(&sample));
    }

    fn device(&mut self, sample: DeviceSample) {
        self.send(Report::device(&sample));
    }

    fn energy(&mut self, hour: HourRecord) {
        self.send(Report::energy(&hour));
    }
}

impl PosterConfig {
    /// From the `zendure` config: None when it names no URL. Reports queue
    /// in the persistent state folder and are retried every `interval`.
    pub fn from_config(config: &ZendureConfig) -> Result<Option<PosterConfig>> {
        let report = &config.report;
        if report.status_url.is_none() && report.data_url.is_none() {
            return Ok(None);
        }
        let token = report
            .token_file
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .with_context(|| {
                        format!("cannot read zendure.report_token_file {}", path.display())
                    })
                    .map(|t| t.lines().next().unwrap_or_default().trim().to_string())
            })
            .transpose()?;
        Ok(Some(PosterConfig {
            status_url: report.status_url.clone(),
            data_url: report.data_url.clone(),
            token,
            queue_file: config.state_dir.join("zendure-reports.jsonl"),
            max_queued: report.queue_max,
            max_queued_bytes: report.queue_max_bytes,
            http_timeout: config.timings.http_timeout,
            retry: config.timings.interval,
        }))
    }
}

/// The controller's reporter: posting when the config names a server,
/// else the log only.
pub enum Reporting {
    Log(LogReporter),
    Http(HttpReporter),
}

impl Reporter for Reporting {
    fn status(&mut self, event: StatusEvent) {
        match self {
            Reporting::Log(r) => r.status(event),
            Reporting::Http(r) => r.status(event),
        }
    }

    fn meter(&mut self, sample: MeterSample) {
        match self {
            Reporting::Log(r) => r.meter(sample),
            Reporting::Http(r) => r.meter(sample),
        }
    }

    fn device(&mut self, sample: DeviceSample) {
        match self {
            Reporting::Log(r) => r.device(sample),
            Reporting::Http(r) => r.device(sample),
        }
    }

    fn energy(&mut self, hour: HourRecord) {
        match self {
            Reporting::Log(r) => r.energy(hour),
            Reporting::Http(r) => r.energy(hour),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zcell-poster-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("queue.jsonl")
    }

    fn report(n: i64) -> Report {
        Report::meter(&MeterSample {
            timestamp: n,
            total_power: 1,
        })
    }

    #[test]
    fn the_wire_format_is_the_references() {
        let change = Report::status(&StatusEvent::Change {
            old: 0,
            new: -300,
            timestamp: 1_800_000_000,
        });
        assert_eq!(change.to, Target::Status);
        assert_eq!(
            change.body,
            json!({"type": "change", "timestamp": 1_800_000_000, "oldValue": 0, "newValue": -300})
        );
        assert_eq!(
            Report::status(&StatusEvent::Start { timestamp: 5 }).body,
            json!({"type": "start", "timestamp": 5})
        );
        assert_eq!(report(7).body, json!({"timestamp": 7, "total_power": 1}));
        let manual = Override {
            mode: crate::zendure::core::manual::OverrideMode::Charge,
            watts: 300,
            until: Some("2027-01-15T09:00:00Z".parse().unwrap()),
        };
        assert_eq!(
            Report::status(&StatusEvent::Override {
                manual,
                timestamp: 9
            })
            .body,
            json!({"type": "override", "timestamp": 9,
                   "newValue": "charge 300 W until 2027-01-15 09:00:00 UTC",
                   "mode": "charge", "watts": 300, "until": 1_800_003_600, "by": "homeassistant"})
        );
        let ended = Report::status(&StatusEvent::OverrideEnded {
            manual: Override {
                until: None,
                ..manual
            },
            timestamp: 10,
        });
        assert_eq!(
            ended.body,
            json!({"type": "override_end", "timestamp": 10,
                   "oldValue": "charge 300 W until cleared",
                   "mode": "charge", "watts": 300, "until": null, "by": "homeassistant"})
        );
        let config = PosterConfig {
            status_url: Some("http://h/s".into()),
            data_url: Some("http://h/data_api.php?x=1".into()),
            token: None,
            queue_file: PathBuf::new(),
            max_queued: 10,
            max_queued_bytes: 1 << 20,
            http_timeout: Duration::from_secs(1),
            retry: Duration::from_secs(1),
        };
        assert_eq!(
            config.url(Target::Meter).unwrap(),
            "http://h/data_api.php?x=1&type=zendure_p1"
        );
        assert_eq!(
            config.url(Target::Device).unwrap(),
            "http://h/data_api.php?x=1&type=zendure"
        );
        assert_eq!(
            config.url(Target::Energy).unwrap(),
            "http://h/data_api.php?x=1&type=zendure_energy"
        );
        assert_eq!(config.url(Target::Status).unwrap(), "http://h/s");
    }

    #[test]
    fn the_queue_keeps_order_across_reopening() {
        let path = temp("order");
        let mut q = DiskQueue::open(&path, 100, 1 << 20).unwrap();
        for n in 0..5 {
            assert_eq!(q.push(&report(n)).unwrap(), 0);
        }
        q.pop(2).unwrap();
        let q = DiskQueue::open(&path, 100, 1 << 20).unwrap();
        assert_eq!(q.len(), 3);
        let stamps: Vec<Value> = q
            .front(10)
            .unwrap()
            .into_iter()
            .map(|r| r.body["timestamp"].clone())
            .collect();
        assert_eq!(stamps, [json!(2), json!(3), json!(4)]);
        let mut q = q;
        q.pop(3).unwrap();
        assert!(q.is_empty() && !path.exists());
    }

    #[test]
    fn the_queue_makes_its_folder() {
        let path = temp("folder")
            .parent()
            .unwrap()
            .join("state/sub/queue.jsonl");
        let mut q = DiskQueue::open(&path, 10, 1 << 20).unwrap();
        q.push(&report(1)).unwrap();
        assert_eq!(DiskQueue::open(&path, 10, 1 << 20).unwrap().len(), 1);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_tenth() {
        let path = temp("full");
        let mut q = DiskQueue::open(&path, 20, 1 << 20).unwrap();
        let mut dropped = 0;
        for n in 0..25 {
            dropped += q.push(&report(n)).unwrap();
        }
        // 20 fit; the 21st drops 2 (a tenth), and so on.
        assert_eq!(dropped, 6);
        assert_eq!(q.len(), 19);
        let first = q.front(1).unwrap()[0].body["timestamp"].clone();
        assert_eq!(first, json!(6));
    }

    /// A queue of its own holding reports 0..n.
    fn filled(name: &str, n: i64) -> (PathBuf, DiskQueue) {
        let path = temp(name);
        let mut q = DiskQueue::open(&path, 1000, 1 << 20).unwrap();
        for n in 0..n {
            q.push(&report(n)).unwrap();
        }
        (path, q)
    }

    fn log_and_cursor(path: &Path) -> (Vec<u8>, String) {
        let cursor = fs::read_to_string(format!("{}.cursor", path.display())).unwrap_or_default();
        (fs::read(path).unwrap(), cursor)
    }

    #[test]
    fn delivering_moves_a_cursor_and_never_rewrites_the_reports() {
        use std::os::unix::fs::MetadataExt as _;
        let (path, mut q) = filled("cursor", 300);
        let (log, _) = log_and_cursor(&path);
        let inode = fs::metadata(&path).unwrap().ino();
        q.pop(100).unwrap();
        q.pop(100).unwrap();
        let (after, cursor) = log_and_cursor(&path);
        assert_eq!(after, log);
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
        assert_eq!(cursor.len(), 21, "{cursor:?}");
        // What a kill -9 leaves is what the next run delivers: nothing
        // acknowledged comes back, nothing unacknowledged is lost.
        let q = DiskQueue::open(&path, 1000, 1 << 20).unwrap();
        assert_eq!(q.len(), 100);
        assert_eq!(q.front(1).unwrap()[0].body["timestamp"], json!(200));
    }

    #[test]
    fn a_cursor_that_points_nowhere_delivers_everything_again() {
        let (path, mut q) = filled("badcursor", 5);
        q.pop(2).unwrap();
        let cursor = format!("{}.cursor", path.display());
        for bad in ["00000000000000000005\n", "junk", "99999999999999999999\n"] {
            fs::write(&cursor, bad).unwrap();
            let q = DiskQueue::open(&path, 1000, 1 << 20).unwrap();
            assert_eq!(q.len(), 5, "{bad}");
            assert_eq!(q.front(1).unwrap()[0].body["timestamp"], json!(0));
        }
    }

    #[test]
    fn a_queue_that_never_empties_has_its_delivered_head_cut_off() {
        let path = temp("compact");
        let mut q = DiskQueue::open(&path, 100_000, COMPACT_AT).unwrap();
        let mut n = 0;
        let mut push = |q: &mut DiskQueue, count| {
            for _ in 0..count {
                assert_eq!(q.push(&report(n)).unwrap(), 0);
                n += 1;
            }
        };
        push(&mut q, 1100);
        q.pop(1000).unwrap();
        push(&mut q, 1000);
        let full = fs::metadata(&path).unwrap().len();
        assert!(full > COMPACT_AT, "{full}");
        q.pop(1000).unwrap();
        assert!(fs::metadata(&path).unwrap().len() < full / 10);
        let q = DiskQueue::open(&path, 100_000, COMPACT_AT).unwrap();
        assert_eq!(q.len(), 100);
        assert_eq!(q.front(1).unwrap()[0].body["timestamp"], json!(2000));
    }

    #[test]
    fn the_queue_is_bounded_in_bytes() {
        let path = temp("bytes");
        let line = serde_json::to_string(&report(1_000_000)).unwrap().len() as u64 + 1;
        let mut q = DiskQueue::open(&path, 100_000, 100 * line).unwrap();
        let mut dropped = 0;
        for n in 1_000_000..1_000_250 {
            dropped += q.push(&report(n)).unwrap();
        }
        let (log, cursor) = log_and_cursor(&path);
        let start: usize = cursor.trim().parse().unwrap_or(0);
        assert!((log.len() - start) as u64 <= 100 * line);
        assert_eq!(q.len() as u64 + dropped, 250);
        assert!(q.len() >= 90, "{}", q.len());
        let big = Report::meter(&MeterSample {
            timestamp: 1,
            total_power: 1,
        });
        let mut tiny = DiskQueue::open(&temp("tiny"), 10, 10).unwrap();
        let err = tiny.push(&big).unwrap_err();
        assert!(format!("{err}").contains("report_queue_max_bytes"), "{err}");
    }

    #[test]
    fn the_queue_files_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = temp("mode");
        let mut q = DiskQueue::open(&path, 100, 1 << 20).unwrap();
        q.push(&report(1)).unwrap();
        q.push(&report(2)).unwrap();
        q.pop(1).unwrap();
        for file in [
            path.clone(),
            PathBuf::from(format!("{}.cursor", path.display())),
        ] {
            let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}: {mode:o}", file.display());
        }
    }

    #[test]
    fn a_line_cut_by_a_crash_is_skipped() {
        let path = temp("cut");
        let mut q = DiskQueue::open(&path, 20, 1 << 20).unwrap();
        q.push(&report(1)).unwrap();
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"to\":\"meter\",\"bo").unwrap();
        let mut q = DiskQueue::open(&path, 20, 1 << 20).unwrap();
        assert_eq!(q.len(), 1);
        q.push(&report(2)).unwrap();
        let q = DiskQueue::open(&path, 20, 1 << 20).unwrap();
        assert_eq!(q.len(), 2);
    }
}
