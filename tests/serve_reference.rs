//! What the reference system's own client (maxbis/zendure: automate.py and
//! device_controller.py) and page send to a server, sent to `serve` as they
//! send it: its status events (with `Rescan`), its ISO-8601 local times
//! without an offset, its reads of the readings and of every event, and a
//! schedule file it cannot parse.
#![cfg(feature = "serve")]

mod serve_env;

use chrono::{TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use serde_json::{Value, json};
use serve_env::{Server, unix_now};

const STATUS: &str = "schedule/api/automation_status_api.php";
const DATA: &str = "data/api/data_api.php";

/// Now on the home's clock, as Python's `datetime.now().isoformat()` writes it.
fn local_iso_now() -> String {
    Utc::now()
        .with_timezone(&Amsterdam)
        .naive_local()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

#[tokio::test]
async fn the_reference_clients_status_events_are_all_kept() {
    let s = Server::start(json!({})).await;
    let t = unix_now() as i64;
    for (kind, old, new) in [
        ("start", json!(null), json!(null)),
        ("change", json!(0), json!(-300)),
        ("Rescan", json!(null), json!(null)),
    ] {
        let (code, body) = s
            .send(
                "POST",
                STATUS,
                json!({"type": kind, "timestamp": t, "oldValue": old, "newValue": new}),
            )
            .await;
        assert_eq!(
            (code, &body["success"]),
            (200, &json!(true)),
            "{kind}: {body}"
        );
    }
    // The default: the last change only, as the reference.
    let (code, body) = s.get(STATUS).await;
    assert_eq!(code, 200, "{body}");
    let types = |body: &Value| -> Vec<String> {
        body["lastChanges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(types(&body), ["change"]);
    // `type=all` (its page's api_client.php default): every type, newest first.
    let (_, body) = s.get(&format!("{STATUS}?type=all")).await;
    assert_eq!(types(&body), ["Rescan", "change", "start"], "{body}");
    assert_eq!(body["entryCount"], 3);
    // An unknown type is shown as it is on our own status too.
    let (_, status) = s.get("api/status").await;
    assert_eq!(status["events"][0]["type"], "Rescan", "{status}");
}

#[tokio::test]
async fn readings_with_local_iso_times_are_stored_and_read_back() {
    let s = Server::start(json!({})).await;
    let when = local_iso_now();
    let (code, body) = s
        .send(
            "POST",
            &format!("{DATA}?type=zendure_p1"),
            json!({"timestamp": when, "total_power": 137}),
        )
        .await;
    assert_eq!((code, &body["success"]), (200, &json!(true)), "{body}");
    let device = json!({"timestamp": when, "properties": {"electricLevel": 61, "outputPackPower": 0,
                        "packInputPower": 250}, "packData": [{"sn": "P1", "socLevel": 61}]});
    let (code, body) = s
        .send("POST", &format!("{DATA}?type=zendure"), device.clone())
        .await;
    assert_eq!((code, &body["success"]), (200, &json!(true)), "{body}");

    // Read back where its page reads them.
    let (code, p1) = s.get(&format!("{DATA}?type=zendure_p1")).await;
    assert_eq!(code, 200, "{p1}");
    assert_eq!(p1["file"], "zendure_p1_data.json");
    assert_eq!(p1["data"]["total_power"], 137.0);
    assert_eq!(
        p1["data"]["timestamp"],
        json!(when),
        "the home's clock, as posted"
    );
    assert!(
        (p1["timestamp"].as_i64().unwrap() as f64 - unix_now()).abs() < 60.0,
        "{p1}"
    );
    let (code, zendure) = s.get(&format!("{DATA}?type=zendure")).await;
    assert_eq!(code, 200, "{zendure}");
    assert_eq!(zendure["data"]["properties"], device["properties"]);
    assert_eq!(zendure["data"]["packData"], device["packData"]);

    // The time was read in the server's zone: the reading is current.
    let (_, status) = s.get("api/status").await;
    let taken = status["live"]["meter_at"]
        .as_f64()
        .unwrap_or_else(|| panic!("{status}"));
    assert!((taken - unix_now()).abs() < 60.0, "{status}");
    let local = Amsterdam.timestamp_opt(taken as i64, 0).unwrap();
    assert_eq!(
        local.naive_local().format("%Y-%m-%dT%H:%M:%S").to_string(),
        when[..19]
    );

    // Nothing posted yet of a kind: said so, in the error shape.
    let fresh = Server::start(json!({})).await;
    let (code, body) = fresh.get(&format!("{DATA}?type=zendure")).await;
    assert_eq!((code, &body["success"]), (404, &json!(false)), "{body}");
}

#[tokio::test]
async fn a_corrupt_schedule_file_is_named_with_its_parse_error() {
    let s = Server::start(json!({})).await;
    std::fs::write(s.schedule_file(), "{\"********0700\": 500,").unwrap();
    let (code, body) = s.get("schedule/api/charge_schedule_api.php").await;
    assert_eq!(code, 500, "{body}");
    let error = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
    assert!(
        error.contains("schedule.json") && error.contains("line 1"),
        "{error}"
    );
    // The page shows the same on its status.
    let (_, status) = s.get("api/status").await;
    let shown = status["schedule_error"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        shown.contains("schedule.json") && shown.contains("line 1"),
        "{shown}"
    );
}
