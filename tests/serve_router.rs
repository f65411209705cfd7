//! The server's router in-process: requests go straight to
//! `serve::router(state)`, no socket and no process, beside the process
//! tests in serve.rs.
#![cfg(feature = "serve")]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use zcell_sched::serve::config;
use zcell_sched::serve::state::AppState;
use zcell_sched::serve::store::{Bounds, Store};
use zcell_sched::serve::{BLOCKING, router};
use zcell_sched::zendure::io::schedule_file::ScheduleFile;

struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let dir =
            std::env::temp_dir().join(format!("zcell-serve-router-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Folder(dir)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server's router over a schedule and database in `dir`, writes open
/// (no token: loopback).
fn server(dir: &Path) -> Router {
    let config = config::parse(
        &json!({"serve": {
            "schedule_file": dir.join("schedule.json"),
            "database": dir.join("serve.sqlite"),
            "time_zone": "Europe/Amsterdam",
        }}),
        || unreachable!("the config names its zone"),
    )
    .unwrap();
    let store = Store::open(
        &config.database,
        Bounds {
            retention: Duration::from_secs(3600),
            max_rows: 1000,
            max_bytes: config.max_database,
        },
    )
    .unwrap();
    router(Arc::new(AppState {
        schedule: ScheduleFile::new(&config.schedule_file),
        schedule_edit: tokio::sync::Mutex::new(()),
        store: Mutex::new(store),
        blocking: tokio::sync::Semaphore::new(BLOCKING),
        token: None,
        planning: Err("no prices in this test".into()),
        prices: Default::default(),
        config,
    }))
}

/// Sends one request; the status, the ETag if any, and the body as JSON.
async fn send(
    app: &Router,
    method: &str,
    path: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(tag) = if_match {
        request = request.header(header::IF_MATCH, tag);
    }
    // A write must say it is JSON (the guard refuses cross-site forms).
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get(header::ETAG)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let doc = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, etag, doc)
}

#[tokio::test]
async fn a_schedule_is_put_against_its_etag_and_read_back() {
    let dir = Folder::new("put");
    let app = server(&dir.0);
    let (status, etag, doc) = send(&app, "GET", "/api/schedule", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc, json!({}));
    let etag = etag.expect("GET answers an ETag");

    let schedule = json!({"********0700": 500, "********2200": "netzero"});
    let (status, new_etag, answer) = send(
        &app,
        "PUT",
        "/api/schedule",
        Some(&etag),
        Some(schedule.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let new_etag = new_etag.expect("PUT answers the new ETag");
    assert_ne!(new_etag, etag);

    let (status, read_etag, doc) = send(&app, "GET", "/api/schedule", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc, schedule);
    assert_eq!(read_etag.as_deref(), Some(new_etag.as_str()));
    assert_eq!(
        ScheduleFile::new(&dir.0.join("schedule.json"))
            .load()
            .unwrap()
            .map(|s| s.to_json()),
        Some(schedule)
    );

    // The first ETag is stale now: nothing is written.
    let (status, current, _) = send(
        &app,
        "PUT",
        "/api/schedule",
        Some(&etag),
        Some(json!({"********0700": 100})),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(current.as_deref(), Some(new_etag.as_str()));
}

#[tokio::test]
async fn a_bad_schedule_is_refused_naming_its_entry() {
    let dir = Folder::new("refuse");
    let app = server(&dir.0);
    let (_, etag, _) = send(&app, "GET", "/api/schedule", None, None).await;
    let (status, _, answer) = send(
        &app,
        "PUT",
        "/api/schedule",
        etag.as_deref(),
        Some(json!({"********0700": 500, "2026112317": "turbo"})),
    )
    .await;
    assert!(status.is_client_error(), "{status}: {answer}");
    let said = answer.to_string();
    assert!(said.contains("2026112317"), "{said}");
    assert!(said.contains("12 characters"), "{said}");
    assert!(!dir.0.join("schedule.json").exists());

    let (status, _, answer) = send(
        &app,
        "PUT",
        "/api/schedule",
        None,
        Some(json!({"********0700": 500})),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{answer}");
}

#[tokio::test]
async fn the_reference_api_answers_the_resolved_day() {
    let dir = Folder::new("reference");
    let app = server(&dir.0);
    let path = "/schedule/api/charge_schedule_api.php";
    let (status, _, answer) = send(
        &app,
        "POST",
        path,
        None,
        Some(json!({"key": "********0700", "value": "500"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _, day) = send(&app, "GET", &format!("{path}?date=20261123"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(day["date"], "20261123");
    assert_eq!(
        day["entries"],
        json!([{"key": "********0700", "value": 500}])
    );
    assert_eq!(day["resolved"][7]["value"], 500);
}
