//! The energy account on a real `zcell-sched serve` over loopback: each
//! run's hour stored once however often it is sent, two runs of an hour
//! added up, priced from `zendure.prices`, grouped by the local day, with
//! the price planner's expected saving beside the realised one.
#![cfg(feature = "serve")]

mod serve_env;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use serve_env::energy::{hour, priced_server, record, today};

#[tokio::test]
async fn hours_add_up_per_run_once_and_are_priced_per_local_day() {
    let today = today();
    let yesterday = today - Duration::days(1);
    let s = priced_server(json!({})).await;

    let noon = hour(yesterday, 12);
    for (path, body) in [
        (
            "api/data?type=zendure_energy",
            record(noon, "run-a", 1000.0, 1500.0, 1800.0),
        ),
        // Sent again (a queue delivered twice): replaces, never adds.
        (
            "data/api/data_api.php?type=zendure_energy",
            record(noon, "run-a", 1000.0, 1500.0, 1800.0),
        ),
        (
            "api/data?type=zendure_energy",
            record(noon, "run-b", 500.0, 700.0, 1700.0),
        ),
        (
            "api/data?type=zendure_energy",
            record(hour(today, 0), "run-b", 200.0, 200.0, 3600.0),
        ),
    ] {
        let (code, answer) = s.send("POST", path, body).await;
        assert_eq!(code, 200, "{path}: {answer}");
    }
    for bad in [
        record(noon + Duration::seconds(1), "run-a", 1.0, 1.0, 1.0),
        record(noon, "run-a", -1.0, 1.0, 1.0),
        record(noon, "run-a", 1.0, 1.0, 7200.0),
        record(Utc::now() + Duration::hours(2), "run-a", 1.0, 1.0, 1.0),
        json!({"hour": "noon"}),
    ] {
        let (code, answer) = s
            .send("POST", "api/data?type=zendure_energy", bad.clone())
            .await;
        assert_eq!(code, 400, "{bad}: {answer}");
    }

    let (code, plan) = s
        .send(
            "POST",
            "api/schedule/plan",
            json!({"date": "today", "save": false}),
        )
        .await;
    assert_eq!(code, 200, "{plan}");
    let etag = plan["etag"].as_str().unwrap().to_string();
    let body = json!({"date": "today", "save": true}).to_string();
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("If-Match", etag),
    ];
    let saved = s
        .request("POST", "api/schedule/plan", &body, &headers)
        .await;
    assert_eq!(saved.status().as_u16(), 200, "{:?}", saved.text().await);

    let (code, energy) = s.get("api/energy?days=2").await;
    assert_eq!(code, 200, "{energy}");
    assert_eq!(energy["priced"], true);
    let days = energy["days"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{energy}");
    let day = &days[0];
    assert_eq!(day["date"], yesterday.to_string());
    let close = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-9;
    assert!(close(&day["import_kwh"], 1.5), "{day}");
    assert!(close(&day["discharged_kwh"], 0.5), "{day}");
    assert!(close(&day["covered_hours"], 3500.0 / 3600.0), "{day}");
    assert_eq!(day["hours"][0]["local"], "12:00");
    // 1.5 kWh at 0.20; without the battery 2.2 kWh.
    assert!(close(&day["cost_eur"], 0.30), "{day}");
    assert!(close(&day["saving_eur"], 0.14), "{day}");
    assert_eq!(day["expected_saving_eur"], Value::Null);
    let today_doc = &days[1];
    assert_eq!(today_doc["date"], today.to_string());
    assert!(close(&today_doc["cost_eur"], 0.02), "{today_doc}");
    assert_eq!(
        today_doc["expected_saving_eur"], plan["expected_saving_eur"],
        "{today_doc}"
    );
}
