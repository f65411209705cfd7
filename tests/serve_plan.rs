//! `POST /api/schedule/plan` on a real `zcell-sched serve` over loopback:
//! a proposal changes nothing, saving needs the proposal's ETag and the
//! token, keeps the owner's entries, and a stale save is refused.

mod serve_env;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use serve_env::{Server, TOKEN};

const DATE: &str = "2031-01-14";
const OWNER: &str = r#"{"********0000": "netzero", "203101141800": -250}"#;

fn zendure() -> Value {
    serve_env::zendure(json!({"vat_percent": 21, "markup_eur_per_kwh": 0.13}))
}

fn write_prices(s: &Server) {
    std::fs::write(s.dir.join("prices.json"), prices().to_string()).unwrap();
}

fn prices() -> Value {
    let list: Vec<Value> = (0..24)
        .map(|h| {
            let p = match h {
                1..=4 => 0.06,
                7..=8 | 17..=19 => 0.32,
                _ => 0.15,
            };
            json!({"start": format!("{DATE}T{h:02}:00:00+01:00"), "price": p})
        })
        .collect();
    Value::Array(list)
}

async fn plan(s: &Server, body: Value, if_match: Option<&str>, token: bool) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}api/schedule/plan", s.url))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(etag) = if_match {
        request = request.header("If-Match", etag);
    }
    if token {
        request = request.header("Authorization", format!("Bearer {TOKEN}"));
    }
    let response = request.send().await.expect("the server answers");
    let code = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn propose_then_save_beside_the_owners_entries() {
    let s = Server::start_with(json!({"token_file": "TOKEN"}), zendure(), "127.0.0.1:0").await;
    write_prices(&s);
    std::fs::write(s.schedule_file(), OWNER).unwrap();

    // A proposal fetches prices: a write, so the token applies.
    let (code, body) = plan(&s, json!({"date": DATE}), None, false).await;
    assert_eq!(code, 401, "{body}");
    let (code, proposal) = plan(&s, json!({"date": DATE}), None, true).await;
    assert_eq!(code, 200, "{proposal}");
    assert_eq!(proposal["written"], false);
    assert_eq!(proposal["slots"].as_array().unwrap().len(), 24);
    assert!(proposal["slots"][0]["buy_eur_per_kwh"].as_f64().unwrap() > 0.2);
    assert!(proposal["expected_saving_eur"].as_f64().unwrap() > 0.0);
    assert_eq!(std::fs::read_to_string(s.schedule_file()).unwrap(), OWNER);
    let etag = proposal["etag"].as_str().unwrap().to_string();

    let save = json!({"date": DATE, "save": true});
    let (code, body) = plan(&s, save.clone(), None, true).await;
    assert_eq!(code, 428, "{body}");
    let (code, body) = plan(&s, save.clone(), Some(&etag), false).await;
    assert_eq!(code, 401, "{body}");
    let (code, saved) = plan(&s, save.clone(), Some(&etag), true).await;
    assert_eq!(code, 200, "{saved}");
    assert_eq!(saved["written"], true);
    assert_eq!(saved["entries"], proposal["entries"]);

    let (doc, new_etag) = s.get_with_etag("api/schedule").await;
    assert_eq!(saved["etag"], json!(new_etag));
    let owner: Value = serde_json::from_str(OWNER).unwrap();
    for (k, v) in owner.as_object().unwrap() {
        assert_eq!(&doc[k], v, "owner entry {k}");
    }
    for (k, v) in saved["entries"].as_object().unwrap() {
        assert_eq!(&doc[k], v, "plan entry {k}");
    }
    assert_eq!(
        doc.as_object().unwrap().len(),
        2 + saved["entries"].as_object().unwrap().len()
    );
    let listed: Value = serde_json::from_str(
        &std::fs::read_to_string(s.dir.join("schedule.price-plan.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(listed["entries"], saved["entries"]);

    // The proposal's ETag is stale now.
    let (code, body) = plan(&s, save, Some(&etag), true).await;
    assert_eq!(code, 412, "{body}");
}

#[tokio::test]
async fn without_prices_in_the_config_plans_are_off() {
    let s = Server::start(json!({})).await;
    let (code, body) = plan(&s, json!({}), None, false).await;
    assert_eq!(code, 409, "{body}");
    assert!(
        !body.to_string().contains(s.dir.to_str().unwrap()),
        "no local path: {body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("price plans are off"),
        "{body}"
    );
    let (code, body) = plan(&s, json!({"colour": 1}), None, false).await;
    assert_eq!(code, 400, "{body}");
}

/// A price source on loopback that counts its fetches; `/broken` fails.
async fn price_source() -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let app = axum::Router::new()
        .route(
            "/prices",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { axum::Json(prices()) }
            }),
        )
        .route(
            "/broken",
            axum::routing::get(|| async { (axum::http::StatusCode::BAD_GATEWAY, "down") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fetches)
}

#[tokio::test]
async fn prices_are_fetched_once_per_day_and_errors_keep_secrets() {
    let (source, fetches) = price_source().await;
    let mut config = zendure();
    config["prices"]["source"] = json!(format!("{source}/prices?securityToken=s3cret&d={{date}}"));
    let s = Server::start_with(json!({}), config, "127.0.0.1:0").await;
    for _ in 0..21 {
        let (code, body) = plan(&s, json!({"date": DATE}), None, false).await;
        assert_eq!(code, 200, "{body}");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "21 proposals, one fetch");

    let mut config = zendure();
    config["prices"]["source"] = json!(format!("{source}/broken?securityToken=s3cret"));
    let s = Server::start_with(json!({}), config, "127.0.0.1:0").await;
    let (code, body) = plan(&s, json!({"date": DATE}), None, false).await;
    assert_eq!(code, 502, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("/broken?…"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
}
