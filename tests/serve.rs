//! `zcell-sched serve` over HTTP on loopback: the reference schedule API,
//! the REST form with its ETag rules, validation naming the entry, tokens,
//! body limits, and the status and data the controller posts.
#![cfg(feature = "serve")]

mod serve_env;

use std::time::Duration;

use serde_json::{Value, json};
use serve_env::{Server, TOKEN};

#[tokio::test]
async fn the_reference_schedule_api_adds_edits_deletes_and_resolves() {
    let s = Server::start(json!({})).await;
    let api = "schedule/api/charge_schedule_api.php";
    let (code, body) = s
        .send("PUT", api, json!({"key": "********0700", "value": "500"}))
        .await;
    assert_eq!((code, &body["success"]), (200, &json!(true)), "{body}");
    let (code, _) = s
        .send(
            "POST",
            api,
            json!({"key": "202611241730", "value": "netzero"}),
        )
        .await;
    assert_eq!(code, 200);
    // An edit that renames its key drops the old one.
    let (code, _) = s
        .send(
            "PUT",
            api,
            json!({"key": "********0800", "value": -300, "originalKey": "********0700"}),
        )
        .await;
    assert_eq!(code, 200);
    let (code, day) = s.get(&format!("{api}?date=20261124")).await;
    assert_eq!(code, 200);
    assert_eq!(day["success"], true);
    assert_eq!(day["date"], "20261124");
    assert!(day["currentHour"].as_str().unwrap().ends_with("00"));
    assert_eq!(day["currentTime"].as_str().unwrap().len(), 4);
    assert_eq!(
        day["entries"],
        json!([{"key": "********0800", "value": -300}, {"key": "202611241730", "value": "netzero"}])
    );
    let at = |time: &str| {
        day["resolved"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["time"] == time)
            .cloned()
            .unwrap_or_else(|| panic!("no {time} in {day}"))
    };
    assert_eq!(
        at("0700"),
        json!({"time": "0700", "value": null, "key": null})
    );
    assert_eq!(at("0900")["value"], -300);
    assert_eq!(
        at("1730"),
        json!({"time": "1730", "value": "netzero", "key": "202611241730"})
    );
    let (code, _) = s.send("DELETE", api, json!({"key": "202611241730"})).await;
    assert_eq!(code, 200);
    let (_, day) = s.get(&format!("{api}?date=20261124")).await;
    assert_eq!(day["entries"].as_array().unwrap().len(), 1);
    // The file itself is the plain schedule object.
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(s.schedule_file()).unwrap()).unwrap();
    assert_eq!(file, json!({"********0800": -300}));
}

/// A server whose schedule holds one entry, and the file's bytes.
async fn one_entry() -> (Server, Vec<u8>) {
    let s = Server::start(json!({})).await;
    let (code, _) = s
        .send(
            "PUT",
            "schedule/api/charge_schedule_api.php",
            json!({"key": "********0700", "value": 500}),
        )
        .await;
    assert_eq!(code, 200);
    let before = std::fs::read(s.schedule_file()).unwrap();
    (s, before)
}

#[tokio::test]
async fn validation_names_every_bad_entry_and_writes_nothing() {
    let (s, before) = one_entry().await;
    let api = "schedule/api/charge_schedule_api.php";
    let (code, body) = s
        .send("PUT", api, json!({"key": "2026112417", "value": 1}))
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"][0]["key"], "2026112417");
    assert!(
        body["error"].as_str().unwrap().contains("12 characters"),
        "{body}"
    );
    let (code, body) = s
        .send("PUT", api, json!({"key": "202611241700", "value": "turbo"}))
        .await;
    assert_eq!(code, 422);
    assert!(
        body["error"].as_str().unwrap().contains("\"turbo\""),
        "{body}"
    );

    let (_, etag) = s.get_with_etag("api/schedule").await;
    let (code, body) = s
        .put_if_match(
            &etag,
            json!({"********0700": 500, "202613011200": 5, "20261124120x": 5, "202611241200": true}),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    let named: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        named,
        ["202611241200", "20261124120x", "202613011200"],
        "{body}"
    );
    assert_eq!(std::fs::read(s.schedule_file()).unwrap(), before);
}

#[tokio::test]
async fn a_stale_put_is_refused_and_nothing_is_lost() {
    let s = Server::start(json!({})).await;
    let (code, _) = s.put_if_match("\"nope\"", json!({})).await;
    assert_eq!(code, 412);
    let (first, etag) = s.get_with_etag("api/schedule").await;
    assert_eq!(first, json!({}));
    let (code, none) = s
        .send("PUT", "api/schedule", json!({"********0700": 1}))
        .await;
    assert_eq!(code, 428, "{none}");
    // Two editors read the same copy; the first write wins, the second is told.
    let (code, body) = s.put_if_match(&etag, json!({"********0700": 500})).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = s.put_if_match(&etag, json!({"********2200": -300})).await;
    assert_eq!(code, 412, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("nothing was written")
    );
    let (now, new_etag) = s.get_with_etag("api/schedule").await;
    assert_eq!(now, json!({"********0700": 500}));
    assert_ne!(new_etag, etag);
    // A change through the reference API makes the old ETag stale too.
    s.send(
        "PUT",
        "schedule/api/charge_schedule_api.php",
        json!({"key": "********0900", "value": 0}),
    )
    .await;
    let (code, _) = s.put_if_match(&new_etag, json!({})).await;
    assert_eq!(code, 412);
}

#[tokio::test]
async fn a_crash_mid_write_leaves_the_old_schedule() {
    let s = Server::start(json!({})).await;
    let (_, etag) = s.get_with_etag("api/schedule").await;
    s.put_if_match(&etag, json!({"********0700": 500})).await;
    // What a write killed before its rename leaves behind.
    let tmp = format!("{}.tmp", s.schedule_file().display());
    std::fs::write(&tmp, "{\"********07").unwrap();
    let (doc, _) = s.get_with_etag("api/schedule").await;
    assert_eq!(doc, json!({"********0700": 500}));
    let (_, etag) = s.get_with_etag("api/schedule").await;
    let (code, _) = s.put_if_match(&etag, json!({"********0700": 600})).await;
    assert_eq!(code, 200);
    assert_eq!(std::fs::read_to_string(&tmp).unwrap(), "{\"********07");
}

#[tokio::test]
async fn a_planted_temporary_symlink_never_takes_a_write() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = Server::start(json!({})).await;
    let victim = s.schedule_file().with_file_name("victim");
    std::fs::write(&victim, "precious").unwrap();
    let tmp = format!("{}.tmp", s.schedule_file().display());
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    let (_, etag) = s.get_with_etag("api/schedule").await;
    let (code, _) = s.put_if_match(&etag, json!({"********0700": 600})).await;
    assert_eq!(code, 200);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let (doc, _) = s.get_with_etag("api/schedule").await;
    assert_eq!(doc, json!({"********0700": 600}));
    let meta = std::fs::symlink_metadata(s.schedule_file()).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn bodies_larger_than_what_is_stored_are_refused_with_a_message() {
    let s = Server::start(json!({"max_stored_body": 2048})).await;
    let pad = "x".repeat(4096);
    for (path, doc) in [
        (
            "api/data?type=zendure",
            json!({"properties": {"electricLevel": 50, "pad": pad}}),
        ),
        ("api/status", json!({"type": "start", "pad": pad})),
    ] {
        let (code, body) = s.send("POST", path, doc).await;
        assert_eq!(code, 413, "{path}: {body}");
        assert_eq!(body["success"], false, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("serve.max_stored_body (2048)"), "{body}");
    }
    let (code, body) = s
        .send(
            "POST",
            "api/data?type=zendure",
            json!({"properties": {"electricLevel": 50}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (_, status) = s.get("api/status").await;
    assert_eq!(status["events"], json!([]), "{status}");
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused_with_a_message() {
    let s = Server::start(json!({"max_body": 1024})).await;
    for path in [
        "api/status",
        "api/data",
        "schedule/api/charge_schedule_api.php",
    ] {
        let (code, body) = s.raw("POST", path, "{not json", None).await;
        assert_eq!(code, 400, "{path}: {body}");
        assert!(body.contains("malformed JSON"), "{path}: {body}");
    }
    let big = format!("{{\"type\": \"start\", \"pad\": \"{}\"}}", "x".repeat(4096));
    let (code, _) = s.raw("POST", "api/status", &big, None).await;
    assert_eq!(code, 413);
    let (code, body) = s.send("POST", "api/status", json!({"type": ""})).await;
    assert_eq!(code, 400);
    assert!(
        body["error"].as_str().unwrap().contains("missing `type`"),
        "{body}"
    );

    // The server is still there.
    let (code, _) = s.get("api/status").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn writes_need_the_token_and_reads_can_too() {
    let s = Server::start(json!({"token_file": "TOKEN"})).await;
    let status = json!({"type": "start"}).to_string();
    let (code, body) = s.raw("POST", "api/status", &status, None).await;
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let (code, _) = s
        .raw(
            "POST",
            "api/status",
            &status,
            Some("wrong-token-0123456789"),
        )
        .await;
    assert_eq!(code, 401);
    let (code, _) = s.raw("POST", "api/status", &status, Some(TOKEN)).await;
    assert_eq!(code, 200);
    let (code, _) = s.raw("GET", "api/status", "", None).await;
    assert_eq!(code, 200, "reads are open by default");

    let closed = Server::start(json!({"token_file": "TOKEN", "open_reads": false})).await;
    let (code, _) = closed.raw("GET", "api/schedule", "", None).await;
    assert_eq!(code, 401);
    let (code, _) = closed.raw("GET", "api/schedule", "", Some(TOKEN)).await;
    assert_eq!(code, 200);
    // The page itself holds no data; it asks for the token.
    let (code, page) = closed.raw("GET", "", "", None).await;
    assert_eq!(code, 200);
    assert!(page.contains("Write token"));
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let out = serve_env::run_refused(json!({"listen": "0.0.0.0:0"}));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs serve.token_file"), "{err}");
    let out = serve_env::run_refused(json!({"retention": "forever"}));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("serve.retention"));
}

#[tokio::test]
async fn closed_reads_need_a_token_and_a_token_must_be_hard_to_guess() {
    let out = serve_env::run_refused(json!({"open_reads": false}));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("serve.open_reads: false needs serve.token_file"),
        "{err}"
    );
    let dir = std::env::temp_dir().join(format!("zcell-weak-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for weak in ["0000000000000000", "abababababababababab", "short-token"] {
        let file = dir.join("token");
        std::fs::write(&file, weak).unwrap();
        let out = serve_env::run_refused(json!({"token_file": file}));
        assert_eq!(out.status.code(), Some(2), "{weak}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("too easy to guess"), "{weak}: {err}");
        assert!(err.contains("openssl rand -hex 32"), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    // A token others may read: said, with the fix.
    let s = Server::start(json!({"token_file": "TOKEN0644"})).await;
    let warned = s.said.join("\n");
    assert!(
        warned.contains("can be read by other users (mode 644): chmod 600"),
        "{warned}"
    );
    let s = Server::start(json!({"token_file": "TOKEN"})).await;
    assert_eq!(s.said, Vec::<String>::new());
}

#[tokio::test]
async fn posted_status_and_samples_show_as_live_status_and_series() {
    let s = Server::start(json!({"alive_after": 30})).await;
    let (_, etag) = s.get_with_etag("api/schedule").await;
    s.put_if_match(&etag, json!({"********0000": "netzero"}))
        .await;
    let now = serve_env::unix_now();
    let (code, live) = s.get("api/status").await;
    assert_eq!(code, 200);
    assert_eq!(live["live"]["alive"], false);
    assert_eq!(live["live"]["last_seen"], Value::Null);
    for (path, body) in [
        (
            "api/status",
            json!({"type": "start", "timestamp": now - 100.0}),
        ),
        (
            "api/status",
            json!({"type": "change", "timestamp": now - 50.0, "oldValue": 0, "newValue": "netzero"}),
        ),
        (
            "api/status",
            json!({"type": "command", "timestamp": now - 40.0, "newValue": {"acMode": 2, "outputLimit": 320}}),
        ),
        (
            "api/data",
            json!({"timestamp": now - 12.0, "total_power": 35}),
        ),
        (
            "data/api/data_api.php?type=zendure",
            json!({"timestamp": now - 5.0, "properties": {"electricLevel": 64, "packInputPower": 320, "outputPackPower": 0}, "packData": []}),
        ),
    ] {
        let (code, body) = s.send("POST", path, body).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    let (_, status) = s.get("api/status").await;
    let live = &status["live"];
    assert_eq!(live["alive"], true, "{status}");
    assert_eq!(live["since"], json!(now - 100.0));
    // The value in force is the schedule's; the command is the controller's.
    assert_eq!(live["value"], "netzero");
    assert_eq!(live["last_command"]["outputLimit"], 320);
    assert_eq!(live["soc"], 64.0);
    assert_eq!(live["battery_w"], -320.0);
    assert_eq!(live["meter_w"], 35.0);
    let age = live["meter_age"].as_f64().unwrap();
    assert!((11.0..60.0).contains(&age), "{age}");
    assert_eq!(status["events"][0]["type"], "command");

    let (_, series) = s.get("api/data?hours=1").await;
    assert_eq!(series["meter"], json!([[now - 12.0, 35.0]]));
    assert_eq!(series["device"], json!([[now - 5.0, 64.0, -320.0]]));
    assert_eq!(series["schedule"][0][1], "netzero");
    assert_eq!(series["time_zone"], "Europe/Amsterdam");

    // The reference status API's view of the same.
    let (_, reference) = s
        .get("schedule/api/automation_status_api.php?limit=5")
        .await;
    assert_eq!(reference["success"], true);
    assert_eq!(reference["lastChanges"][0]["newValue"], "netzero");
    assert_eq!(reference["entryCount"], 3);

    s.send("POST", "api/status", json!({"type": "stop"})).await;
    let (_, status) = s.get("api/status").await;
    assert_eq!(status["live"]["alive"], false);
}

/// The owner's override, told by the controller's `override` and
/// `override_end` events, shows in the live status while it is in force:
/// not after its end, nor once its time has passed without one.
#[tokio::test]
async fn the_override_in_force_shows_in_the_live_status() {
    let s = Server::start(json!({"token_file": "TOKEN"})).await;
    let now = serve_env::unix_now();
    let shown = |status: &Value| status["live"]["override"].clone();
    let set = |until: Value| {
        json!({"type": "override", "timestamp": now - 60.0,
               "newValue": "charge 300 W until ...",
               "mode": "charge", "watts": 300, "until": until, "by": "homeassistant"})
    };
    let (_, status) = s.get("api/status").await;
    assert_eq!(shown(&status), Value::Null, "{status}");

    // The same guard as any post: the token.
    let body = set(json!(now + 600.0)).to_string();
    let (code, _) = s.raw("POST", "api/status", &body, None).await;
    assert_eq!(code, 401);
    // The reference's path, as the controller posts it.
    let (code, answer) = s
        .send(
            "POST",
            "schedule/api/automation_status_api.php",
            set(json!(now + 600.0)),
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    let (_, status) = s.get("api/status").await;
    assert_eq!(
        shown(&status),
        json!({"mode": "charge", "watts": 300, "until": now + 600.0,
               "by": "homeassistant", "since": now - 60.0}),
        "{status}"
    );

    // A malformed one is refused, naming the field, and changes nothing.
    let mut bad = set(json!(now + 600.0));
    bad["mode"] = json!("boost");
    let (code, answer) = s.send("POST", "api/status", bad).await;
    assert_eq!(code, 400, "{answer}");
    assert!(answer.to_string().contains("`mode`"), "{answer}");
    let (_, again) = s.get("api/status").await;
    assert_eq!(shown(&again), shown(&status));

    // Ended by the owner.
    let end = json!({"type": "override_end", "timestamp": now - 30.0,
                     "oldValue": "charge 300 W until ...", "mode": "charge", "watts": 300,
                     "until": now + 600.0, "by": "homeassistant"});
    let (code, _) = s.send("POST", "api/status", end).await;
    assert_eq!(code, 200);
    let (_, status) = s.get("api/status").await;
    assert_eq!(shown(&status), Value::Null, "{status}");

    // One whose time has passed is over though its end was lost.
    let (code, _) = s.send("POST", "api/status", set(json!(now - 1.0))).await;
    assert_eq!(code, 200);
    let (_, status) = s.get("api/status").await;
    assert_eq!(shown(&status), Value::Null, "{status}");
    // Other events after it leave it as it is.
    let (code, _) = s.send("POST", "api/status", set(Value::Null)).await;
    assert_eq!(code, 200);
    s.send(
        "POST",
        "api/status",
        json!({"type": "change", "oldValue": 0, "newValue": 300}),
    )
    .await;
    let (_, status) = s.get("api/status").await;
    assert_eq!(shown(&status)["until"], Value::Null, "{status}");
    assert_eq!(shown(&status)["mode"], "charge", "{status}");
    // The reference status API lists them like any other type.
    let (_, reference) = s
        .get("schedule/api/automation_status_api.php?type=all&limit=3")
        .await;
    let kinds: Vec<&Value> = reference["lastChanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["type"])
        .collect();
    assert_eq!(kinds, ["change", "override_end", "override"], "{reference}");
}

/// The schedule file's bytes and the events stored, to show a refused
/// request changed nothing.
async fn stored(s: &Server) -> (Option<Vec<u8>>, Value) {
    let (_, status) = s.get("api/status").await;
    (
        std::fs::read(s.schedule_file()).ok(),
        status["events"].clone(),
    )
}

#[tokio::test]
async fn cross_site_writes_are_refused_with_or_without_a_token() {
    for serve in [json!({}), json!({"token_file": "TOKEN"})] {
        let s = Server::start(serve.clone()).await;
        let token = format!("Bearer {TOKEN}");
        let before = stored(&s).await;
        let charge = json!({"key": "********0000", "value": 2400}).to_string();
        let stop = json!({"type": "stop"}).to_string();
        let own = s.url.trim_end_matches('/').to_string();
        let host = own.trim_start_matches("http://").to_string();
        let schedule = "schedule/api/charge_schedule_api.php";
        // With the token even, so only the origin or the type refuses them.
        for (method, path, kind, from, code) in [
            // What a form or a `no-cors` fetch from another page sends.
            (
                "POST",
                schedule,
                "text/plain;charset=UTF-8",
                vec![
                    ("Origin", "http://127.0.0.2:9"),
                    ("Sec-Fetch-Site", "cross-site"),
                ],
                403,
            ),
            (
                "POST",
                "api/status",
                "text/plain",
                vec![("Origin", "http://evil.example")],
                403,
            ),
            // Another port of the same machine is another origin.
            (
                "PUT",
                schedule,
                "application/json",
                vec![("Origin", "http://127.0.0.1:9")],
                403,
            ),
            (
                "POST",
                "api/status",
                "application/json",
                vec![("Sec-Fetch-Site", "same-site")],
                403,
            ),
            // No browser, but no JSON either: a form post by any means.
            (
                "POST",
                "api/status",
                "application/x-www-form-urlencoded",
                vec![],
                415,
            ),
            ("DELETE", schedule, "", vec![], 415),
        ] {
            let body = if path == schedule { &charge } else { &stop };
            let mut headers: Vec<(&str, String)> =
                from.iter().map(|(k, v)| (*k, v.to_string())).collect();
            headers.push(("Authorization", token.clone()));
            if !kind.is_empty() {
                headers.push(("Content-Type", kind.to_string()));
            }
            let response = s.request(method, path, body, &headers).await;
            let status = response.status().as_u16();
            let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert_eq!(
                status, code,
                "{serve} {method} {path} {headers:?}: {answer}"
            );
            assert_eq!(answer["success"], false);
            assert!(
                answer["error"].as_str().unwrap().contains("Content-Type")
                    || answer["error"].as_str().unwrap().contains("cross-site"),
                "{answer}"
            );
        }
        assert_eq!(
            stored(&s).await,
            before,
            "{serve}: a refused write changed nothing"
        );
        // The page's own requests and a program's still write.
        let response = s
            .request(
                "POST",
                "schedule/api/charge_schedule_api.php",
                &charge,
                &[
                    ("Content-Type", "application/json".to_string()),
                    ("Origin", own.clone()),
                    ("Sec-Fetch-Site", "same-origin".to_string()),
                    ("Authorization", token.clone()),
                ],
            )
            .await;
        assert_eq!(response.status().as_u16(), 200, "{serve} from {host}");
        let (code, _) = s.send("POST", "api/status", json!({"type": "start"})).await;
        assert_eq!(code, 200);
    }
}

#[tokio::test]
async fn only_the_servers_own_host_names_are_answered() {
    let s = Server::start(json!({"allowed_hosts": ["zendure.lan"]})).await;
    let port = s.url.rsplit(':').next().unwrap().trim_end_matches('/');
    s.send("POST", "api/status", json!({"type": "start"})).await;
    // A page on a name its DNS points here (rebinding) reads nothing.
    for host in [format!("evil.example:{port}"), "127.0.0.1:9".to_string()] {
        for path in ["api/status", "api/schedule", "api/data?hours=744", ""] {
            let response = s.request("GET", path, "", &[("Host", host.clone())]).await;
            assert_eq!(response.status().as_u16(), 421, "{host} {path}");
            let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert_eq!(answer["success"], false);
            assert!(
                answer["error"].as_str().unwrap().contains("allowed_hosts"),
                "{answer}"
            );
        }
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "zendure.lan".to_string(),
        format!("ZENDURE.lan:{port}"),
    ] {
        let response = s
            .request("GET", "api/status", "", &[("Host", host.clone())])
            .await;
        assert_eq!(response.status().as_u16(), 200, "{host}");
    }
}

#[tokio::test]
async fn every_answer_has_the_security_headers() {
    let s = Server::start(json!({})).await;
    for (method, path) in [
        ("GET", ""),
        ("GET", "assets/app.js"),
        ("GET", "api/status"),
        ("GET", "no/such/thing"),
        ("POST", "api/status"),
    ] {
        let response = s.request(method, path, "{}", &[]).await;
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn every_error_is_json_and_head_answers_like_get() {
    let s = Server::start(json!({"max_body": 1024})).await;
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(4096));
    let json = [("Content-Type", "application/json".to_string())];
    for (method, path, body, code, says) in [
        ("GET", "no/such/thing", "", 404, "no such path"),
        (
            "DELETE",
            "api/status",
            "{}",
            405,
            "does not take this method",
        ),
        (
            "POST",
            "api/status",
            big.as_str(),
            413,
            "max_body (1024 bytes)",
        ),
        ("GET", "api/data?hours=many", "", 400, "hours"),
        (
            "GET",
            "schedule/api/automation_status_api.php?limit=-1",
            "",
            400,
            "limit",
        ),
    ] {
        let response = s.request(method, path, body, &json).await;
        assert_eq!(response.status().as_u16(), code, "{method} {path}");
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let text = response.text().await.unwrap();
        assert!(
            kind.starts_with("application/json"),
            "{path}: {kind} {text}"
        );
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["success"], false, "{answer}");
        assert_eq!(answer["errors"], json!([]), "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    let api = "schedule/api/charge_schedule_api.php?date=20261124";
    let get = s.request("GET", api, "", &[]).await;
    let head = s.request("HEAD", api, "", &[]).await;
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["etag"], get.headers()["etag"]);
    assert_eq!(
        head.headers()["content-type"],
        get.headers()["content-type"]
    );
    assert_eq!(head.text().await.unwrap(), "");
    assert!(get.text().await.unwrap().contains("20261124"));
}

#[tokio::test]
async fn half_open_connections_are_closed_and_lock_no_one_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start(json!({"header_timeout": 0.5, "max_connections": 4})).await;
    let address = s.url.trim_start_matches("http://").trim_end_matches('/');
    // Three times the cap: a request line and one header, never finished.
    let mut half_open = Vec::new();
    for _ in 0..12 {
        let mut c = tokio::net::TcpStream::connect(address).await.unwrap();
        c.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        half_open.push(c);
    }
    // Served once the timeouts free the slots ahead of it.
    let (code, _) = tokio::time::timeout(Duration::from_secs(20), s.get("api/status"))
        .await
        .expect("a normal request is answered while half-open connections wait");
    assert_eq!(code, 200);
    for mut c in half_open {
        let mut buf = [0u8; 1024];
        // The server ends each one (closed, or a 408 before closing).
        let read = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match c.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(read.is_ok(), "a half-open connection was left open");
    }
    // Headers in time, then a body that never finishes: 408, in time.
    let mut c = tokio::net::TcpStream::connect(address).await.unwrap();
    c.write_all(
        b"POST /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\"",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut answer))
        .await
        .expect("a dripping body was waited on for ever")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("serve.header_timeout (0.5 s)"), "{answer}");
}

#[tokio::test]
async fn the_servers_clock_decides_what_is_current_and_alive() {
    let s = Server::start(json!({"alive_after": 30})).await;
    let now = serve_env::unix_now();
    // Milliseconds for seconds, and 1e308: refused, naming field and skew.
    for (path, body) in [
        (
            "api/data",
            json!({"timestamp": now * 1000.0, "total_power": 4321}),
        ),
        ("api/data", json!({"timestamp": 1e308, "total_power": 4321})),
        (
            "api/status",
            json!({"type": "stop", "timestamp": now + 3600.0}),
        ),
    ] {
        let (code, answer) = s.send("POST", path, body.clone()).await;
        assert_eq!(code, 400, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("`timestamp`") && error.contains("300 s ahead"),
            "{error}"
        );
    }
    let (_, status) = s.get("api/status").await;
    assert_eq!(status["live"]["meter_w"], Value::Null, "nothing was stored");
    assert_eq!(status["events"], json!([]));

    // A reading a little ahead (within the skew), then a newer one: the
    // one received last is current.
    for w in [4321, 35] {
        let at = if w == 4321 { now + 200.0 } else { now };
        let (code, _) = s
            .send(
                "POST",
                "api/data",
                json!({"timestamp": at, "total_power": w}),
            )
            .await;
        assert_eq!(code, 200);
    }
    let (_, status) = s.get("api/status").await;
    assert_eq!(status["live"]["meter_w"], 35.0, "{status}");
    // A controller whose clock is a day behind is alive when it posts, and
    // a stop received after its start stops it, whatever the stamps say.
    for (kind, at, alive) in [
        ("start", now + 100.0, true),
        ("stop", now - 86_400.0, false),
        ("start", now - 86_400.0, true),
    ] {
        let (code, _) = s
            .send("POST", "api/status", json!({"type": kind, "timestamp": at}))
            .await;
        assert_eq!(code, 200);
        let (_, status) = s.get("api/status").await;
        assert_eq!(status["live"]["alive"], alive, "after {kind}: {status}");
    }
}

#[tokio::test]
async fn wrong_types_repeated_keys_and_malformed_dates_change_nothing() {
    let (s, before) = one_entry().await;
    let api = "schedule/api/charge_schedule_api.php";
    for original in [json!(700), json!(["********0700"]), json!({"k": 1})] {
        let (code, body) = s
            .send(
                "PUT",
                api,
                json!({"key": "********0800", "value": 100, "originalKey": original}),
            )
            .await;
        assert_eq!(code, 400, "{original}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("originalKey"),
            "{body}"
        );
    }
    assert_eq!(std::fs::read(s.schedule_file()).unwrap(), before);

    // The first value is invalid; the last would hide it.
    let (_, etag) = s.get_with_etag("api/schedule").await;
    let response = s
        .request(
            "PUT",
            "api/schedule",
            r#"{"********0700": "turbo", "********0700": 200}"#,
            &[
                ("Content-Type", "application/json".to_string()),
                ("If-Match", etag),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 422);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["errors"][0]["key"], "********0700", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("more than once"),
        "{body}"
    );
    assert_eq!(std::fs::read(s.schedule_file()).unwrap(), before);

    // A malformed date is today, as the reference; not 2 Nov 2026.
    let (_, today) = s.get(api).await;
    for date in ["2026112", "202611023", "2026-11-02", "x"] {
        let (code, day) = s.get(&format!("{api}?date={date}")).await;
        assert_eq!(code, 200);
        assert_eq!(day["date"], today["date"], "{date}");
    }
}

#[tokio::test]
async fn answers_name_no_local_paths() {
    let s = Server::start(json!({})).await;
    // A schedule the server cannot read: its error names the file only.
    std::fs::create_dir(s.schedule_file()).unwrap();
    let folder = s.dir.to_str().unwrap();
    let (_, status) = s.get("api/status").await;
    let (code, day) = s.get("schedule/api/charge_schedule_api.php").await;
    assert_eq!(code, 500);
    for error in [&status["schedule_error"], &day["error"]] {
        let error = error.as_str().unwrap();
        assert!(
            error.contains("schedule.json") && !error.contains(folder),
            "{error}"
        );
    }
}
