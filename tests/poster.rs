//! The controller's poster against a real `zcell-sched serve` that is down
//! at first: reports queue on disk, in order, and arrive in order when the
//! server comes up; a full queue drops the oldest and counts them.
#![cfg(feature = "serve")]

mod serve_env;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, json};
use serve_env::Server;
use tokio::sync::watch;
use zcell_sched::zendure::core::report::{DeviceSample, MeterSample, Reporter, StatusEvent};
use zcell_sched::zendure::io::poster::{HttpReporter, PosterConfig, PosterStats};

/// A loopback port nothing listens on (yet).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn queue_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zcell-poster-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("reports.jsonl")
}

fn config(port: u16, queue: &Path, max_queued: usize) -> PosterConfig {
    PosterConfig {
        status_url: Some(format!("http://127.0.0.1:{port}/api/status")),
        data_url: Some(format!("http://127.0.0.1:{port}/data/api/data_api.php")),
        token: None,
        queue_file: queue.to_path_buf(),
        max_queued,
        max_queued_bytes: 1 << 20,
        http_timeout: Duration::from_secs(2),
        retry: Duration::from_millis(50),
    }
}

/// Waits (on the poster's own change signal, bounded) until `done` holds.
async fn until(
    mut stats: watch::Receiver<PosterStats>,
    done: impl Fn(&PosterStats) -> bool,
) -> PosterStats {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let now = stats.borrow_and_update().clone();
            if done(&now) {
                return now;
            }
            stats.changed().await.expect("the poster is running");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the poster never got there: {:?}", stats.borrow()))
}

fn meter(t: i64, w: i32) -> MeterSample {
    MeterSample {
        timestamp: t,
        total_power: w,
    }
}

#[tokio::test]
async fn reports_wait_on_disk_and_arrive_in_order() {
    let port = free_port();
    let queue = queue_file("order");
    let t0 = serve_env::unix_now() as i64 - 100;

    let (mut poster, handle) = HttpReporter::start(config(port, &queue, 1000)).unwrap();
    poster.status(StatusEvent::Start { timestamp: t0 });
    for i in 0..5 {
        poster.meter(meter(t0 + 1 + i, 100 * i as i32));
    }
    let mut props = Map::new();
    props.insert("electricLevel".into(), json!(57));
    props.insert("outputPackPower".into(), json!(250));
    poster.device(DeviceSample {
        timestamp: t0 + 7,
        properties: props,
        pack_data: vec![],
    });
    poster.status(StatusEvent::Change {
        old: 0,
        new: 250,
        timestamp: t0 + 8,
    });
    let down = until(handle.watch(), |s| s.queued == 8).await;
    assert_eq!(down.delivered, 0);
    assert!(
        down.last_error
            .as_deref()
            .unwrap_or("")
            .contains("cannot connect"),
        "{down:?}"
    );
    assert_eq!(std::fs::read_to_string(&queue).unwrap().lines().count(), 8);
    // The controller stops while the server is still down: all stays queued.
    drop(poster);
    let left = handle.finish().await;
    assert_eq!(left.queued, 8);

    let server = Server::start_on(json!({}), &format!("127.0.0.1:{port}")).await;
    let (mut poster, handle) = HttpReporter::start(config(port, &queue, 1000)).unwrap();
    // Sent while the old queue may still be draining: it must come last.
    poster.status(StatusEvent::Stop { timestamp: t0 + 9 });
    let up = until(handle.watch(), |s| s.delivered == 9 && s.queued == 0).await;
    assert_eq!((up.dropped, up.rejected, up.last_error), (0, 0, None));
    assert!(!queue.exists());

    let (_, data) = server.get("api/data?hours=1").await;
    let stamps: Vec<f64> = data["meter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_f64().unwrap())
        .collect();
    assert_eq!(stamps, (1..=5).map(|i| (t0 + i) as f64).collect::<Vec<_>>());
    assert_eq!(data["device"], json!([[(t0 + 7) as f64, 57.0, 250.0]]));
    let (_, status) = server.get("api/status").await;
    let types: Vec<&str> = status["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["stop", "change", "start"]);
    assert_eq!(status["live"]["last_command"], 250);
    drop(poster);
    handle.finish().await;
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_them() {
    let port = free_port();
    let queue = queue_file("full");
    let t0 = serve_env::unix_now() as i64 - 100;
    let (mut poster, handle) = HttpReporter::start(config(port, &queue, 10)).unwrap();
    for i in 0..25 {
        poster.meter(meter(t0 + i, i as i32));
    }
    let down = until(handle.watch(), |s| s.queued + s.dropped as usize == 25).await;
    assert_eq!(down.dropped, 15, "{down:?}");
    assert_eq!(down.queued, 10);

    let server = Server::start_on(json!({}), &format!("127.0.0.1:{port}")).await;
    let up = until(handle.watch(), |s| s.queued == 0).await;
    assert_eq!(up.delivered, 10);
    assert_eq!(up.dropped, 15, "the count stays in the status");
    let (_, data) = server.get("api/data?hours=1").await;
    let powers: Vec<f64> = data["meter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_f64().unwrap())
        .collect();
    assert_eq!(powers, (15..25).map(f64::from).collect::<Vec<_>>());
    drop(poster);
    handle.finish().await;
}

#[tokio::test]
async fn a_report_the_server_refuses_is_counted_not_retried() {
    let server = Server::start(json!({})).await;
    let port: u16 = server
        .url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let queue = queue_file("refused");
    let mut config = config(port, &queue, 100);
    // A data URL whose `type` the server does not know.
    config.data_url = Some(format!("http://127.0.0.1:{port}/api/data?type=price&x=1"));
    let (mut poster, handle) = HttpReporter::start(config).unwrap();
    poster.meter(meter(serve_env::unix_now() as i64, 5));
    poster.status(StatusEvent::Start {
        timestamp: serve_env::unix_now() as i64,
    });
    let done = until(handle.watch(), |s| s.delivered + s.rejected == 2).await;
    assert_eq!(
        (done.delivered, done.rejected, done.queued),
        (1, 1, 0),
        "{done:?}"
    );
    drop(poster);
    handle.finish().await;
}
