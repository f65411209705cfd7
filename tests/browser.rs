//! The page in a real headless Chromium, driven over WebDriver
//! (chromedriver): load it, add an entry and see the timeline change, see
//! a validation error inline, see the live status once a controller posts
//! (and the owner's override while it is in force), and see a stale edit
//! refused. Screenshots go to
//! target/tmp/browser/*.png for a person to look at.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`
//! (`scripts/test` installs them).
#![cfg(feature = "serve")]

mod serve_env;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use serve_env::{Server, TOKEN};

/// `chromedriver` on a port of its own, stopped with the test.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    /// Stops chromedriver and the Chromium it started (its own process
    /// group), even when the test failed with the session open.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn need(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{program}` is not installed: install the Debian package `{package}` (scripts/test does)")
    })
}

impl Driver {
    fn start() -> Driver {
        let chromedriver = need("chromedriver", "chromium-driver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let stdout = child.stdout.take().unwrap();
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        // It says so once it listens.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("started successfully") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("chromedriver did not start");
        driver
    }
}

async fn browser(driver: &Driver) -> Client {
    let chromium = need("chromium", "chromium");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1700", "--lang=en-GB"],
        }),
    );
    // The console, for the tests that need it to stay empty.
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// The text of `css` once it contains `needle` (the page refreshes itself;
/// WebDriver offers no event to wait on, so this looks every 100 ms).
async fn wait_text(c: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(needle) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{css}` never showed `{needle}`; it shows `{last}`");
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.unwrap().len()
}

async fn wait_count(c: &Client, css: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if count(c, css).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never {n} of `{css}`, but {}", count(c, css).await);
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn visible(c: &Client, css: &str) -> bool {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_page_edits_the_schedule_and_shows_the_controller() {
    let driver = Driver::start();
    let server = Server::start(json!({"token_file": "TOKEN", "alive_after": 60})).await;
    let c = browser(&driver).await;

    // Load: an empty schedule idles all day.
    c.goto(&server.url).await.unwrap();
    wait_count(&c, "#timeline-today .seg", 1).await;
    assert_eq!(count(&c, "#timeline-today .seg.idle").await, 1);
    assert!(visible(&c, "#entries-empty").await);
    let help = c
        .find(Locator::Css(".help"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(help.contains("matches any digit"), "{help}");
    shot(&c, "1-loaded").await;

    // Add an entry: charge 800 W every day from 06:00, with the token.
    fill(&c, "#token", TOKEN).await;
    fill(&c, "#entry-key", "********0600").await;
    click(&c, "input[name=kind][value=charge]").await;
    fill(&c, "#entry-watts", "800").await;
    click(&c, "#entry-save").await;
    wait_count(&c, "#timeline-today .seg.charge", 1).await;
    assert_eq!(count(&c, "#timeline-tomorrow .seg.charge").await, 1);
    wait_text(
        &c,
        "#entries tr[data-key='********0600']",
        "charge at 800 W",
    )
    .await;
    let (_, stored) = server.get("api/schedule").await;
    assert_eq!(stored, json!({"********0600": 800}));

    // NetZero in the evening: a segment of its own colour.
    fill(&c, "#entry-key", "********1800").await;
    click(&c, "input[name=kind][value=netzero]").await;
    click(&c, "#entry-save").await;
    wait_count(&c, "#timeline-today .seg.netzero", 1).await;
    shot(&c, "2-entries-added").await;

    // A bad key: the server's message, inline, naming the entry.
    fill(&c, "#entry-key", "2026112417").await;
    click(&c, "input[name=kind][value=discharge]").await;
    fill(&c, "#entry-watts", "300").await;
    click(&c, "#entry-save").await;
    let error = wait_text(&c, "#form-error", "12 characters").await;
    assert!(error.contains("2026112417"), "{error}");
    let class = c
        .find(Locator::Css("#entry-key"))
        .await
        .unwrap()
        .attr("class")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(class.contains("invalid"), "{class}");
    shot(&c, "3-validation-error").await;
    let (_, stored) = server.get("api/schedule").await;
    assert_eq!(stored.as_object().unwrap().len(), 2, "{stored}");

    // A controller posts: the live status shows it within a refresh.
    let now = serve_env::unix_now();
    for (path, body) in [
        (
            "api/status",
            json!({"type": "start", "timestamp": now - 600.0}),
        ),
        (
            "api/status",
            json!({"type": "change", "timestamp": now - 30.0, "oldValue": 0, "newValue": -320}),
        ),
        (
            "api/data",
            json!({"timestamp": now - 3600.0, "total_power": 400}),
        ),
        (
            "api/data",
            json!({"timestamp": now - 8.0, "total_power": 35}),
        ),
        (
            "api/data",
            json!({"timestamp": now - 3600.0, "properties": {"electricLevel": 80, "outputPackPower": 600, "packInputPower": 0}}),
        ),
        (
            "api/data",
            json!({"timestamp": now - 5.0, "properties": {"electricLevel": 57, "outputPackPower": 0, "packInputPower": 320}}),
        ),
    ] {
        let (code, answer) = server.send("POST", path, body).await;
        assert_eq!(code, 200, "{path}: {answer}");
    }
    wait_text(&c, "#status-alive", "controller alive").await;
    wait_text(&c, "#status-soc", "57 %").await;
    wait_text(&c, "#status-battery", "discharging 320 W").await;
    wait_text(&c, "#status-meter", "importing 35 W").await;
    wait_text(&c, "#status-command", "-320").await;
    assert!(count(&c, "#plot canvas").await >= 1, "the plot is drawn");
    shot(&c, "4-live-status").await;

    // An override from the owner: shown while in force, gone once ended,
    // and gone once its time passed though no end came.
    let hidden = "#status-override-row[hidden]";
    assert_eq!(count(&c, hidden).await, 1, "no override yet");
    let set = |until: f64| {
        json!({"type": "override", "timestamp": serve_env::unix_now(),
               "newValue": "charge 300 W", "mode": "charge", "watts": 300,
               "until": until, "by": "homeassistant"})
    };
    let post = |body: Value| async {
        let (code, answer) = server.send("POST", "api/status", body).await;
        assert_eq!(code, 200, "{answer}");
    };
    post(set(now + 3600.0)).await;
    let text = wait_text(&c, "#status-override-row", "charge 300 W until").await;
    assert!(text.contains("set from homeassistant"), "{text}");
    shot(&c, "4b-override").await;
    post(
        json!({"type": "override_end", "oldValue": "charge 300 W", "mode": "charge",
                "watts": 300, "until": now + 3600.0, "by": "homeassistant"}),
    )
    .await;
    wait_count(&c, hidden, 1).await;
    post(set(serve_env::unix_now() + 20.0)).await;
    wait_text(&c, "#status-override-row", "charge 300 W until").await;
    wait_count(&c, hidden, 1).await;

    // A stale edit: someone else changes the schedule after the page read
    // it; the page's save is refused and both edits' effects are kept.
    let row_edit = "#entries tr[data-key='********0600'] button.edit";
    click(&c, row_edit).await;
    let (code, _) = server
        .send(
            "PUT",
            "schedule/api/charge_schedule_api.php",
            json!({"key": "********2200", "value": -300}),
        )
        .await;
    assert_eq!(code, 200);
    fill(&c, "#entry-watts", "900").await;
    click(&c, "#entry-save").await;
    wait_text(&c, "#stale", "not saved").await;
    assert!(visible(&c, "#stale").await);
    let (_, stored) = server.get("api/schedule").await;
    assert_eq!(
        stored,
        json!({"********0600": 800, "********1800": "netzero", "********2200": -300}),
        "the refused edit wrote nothing and lost nothing"
    );
    shot(&c, "5-stale-edit").await;
    click(&c, "#stale-reload").await;
    wait_text(&c, "#entries", "********2200").await;
    assert!(!visible(&c, "#stale").await);

    // On a phone-sized screen nothing runs off the side.
    c.set_window_size(390, 1600).await.unwrap();
    // The plot follows the window on its resize event; give it a moment.
    let overflow = "const w = window.innerWidth; \
        return [...document.querySelectorAll('body *')] \
          .filter(e => e.getBoundingClientRect().right > w + 1) \
          .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8);";
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut wide = Value::Null;
    while Instant::now() < deadline {
        wide = c.execute(overflow, vec![]).await.unwrap();
        if wide.as_array().is_some_and(Vec::is_empty) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(wide, json!([]), "these run off a phone's screen");
    shot(&c, "6-phone").await;
    c.close().await.unwrap();
}

/// chromedriver's console log since it was last read (its own command,
/// which fantoccini lets one send as is).
#[derive(Debug)]
struct ConsoleLog;

impl fantoccini::wd::WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(
        &self,
        base: &reqwest::Url,
        session: Option<&str>,
    ) -> Result<reqwest::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type": "browser"}"#.into()),
        )
    }
}

async fn console(c: &Client) -> Vec<Value> {
    let log = c.issue_cmd(ConsoleLog).await.expect("the console log");
    log.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_page_loads_and_edits_with_an_empty_console() {
    let driver = Driver::start();
    let server = Server::start(json!({"alive_after": 60})).await;
    let now = serve_env::unix_now();
    for body in [
        json!({"timestamp": now - 600.0, "total_power": 400}),
        json!({"timestamp": now - 5.0, "total_power": 35}),
        json!({"timestamp": now - 600.0, "properties": {"electricLevel": 80, "outputPackPower": 600}}),
        json!({"timestamp": now - 5.0, "properties": {"electricLevel": 57, "packInputPower": 320}}),
    ] {
        let (code, answer) = server.send("POST", "api/data", body).await;
        assert_eq!(code, 200, "{answer}");
    }
    let c = browser(&driver).await;
    c.goto(&server.url).await.unwrap();
    wait_count(&c, "#timeline-today .seg", 1).await;
    wait_text(&c, "#status-soc", "57 %").await;
    assert!(
        count(&c, "#plot canvas").await >= 1,
        "uPlot draws under the CSP"
    );

    // The W field shows only for charge and discharge.
    for (kind, shown) in [
        ("netzero", false),
        ("netzero+", false),
        ("idle", false),
        ("discharge", true),
        ("charge", true),
    ] {
        click(&c, &format!("input[name=kind][value='{kind}']")).await;
        assert_eq!(visible(&c, "#entry-watts").await, shown, "{kind}");
    }
    fill(&c, "#entry-key", "********0600").await;
    fill(&c, "#entry-watts", "800").await;
    click(&c, "#entry-save").await;
    wait_count(&c, "#timeline-today .seg.charge", 1).await;
    click(&c, "input[name=kind][value=netzero]").await;
    fill(&c, "#entry-key", "********1800").await;
    click(&c, "#entry-save").await;
    wait_count(&c, "#timeline-today .seg.netzero", 1).await;
    let (_, stored) = server.get("api/schedule").await;
    assert_eq!(
        stored,
        json!({"********0600": 800, "********1800": "netzero"})
    );
    shot(&c, "7-netzero-no-watts").await;
    // No 404 (icon), no CSP violation, no script error.
    assert_eq!(console(&c).await, Vec::<Value>::new());
    c.close().await.unwrap();
}

#[tokio::test]
async fn the_page_shows_the_energy_chart_and_each_days_cost_and_saving() {
    use serve_env::energy::{hour, priced_server, record, today};
    let driver = Driver::start();
    let server = priced_server(json!({})).await;
    let yesterday = today() - chrono::Duration::days(1);
    for body in [
        record(hour(yesterday, 12), "run-a", 1500.0, 2200.0, 3600.0),
        record(hour(yesterday, 13), "run-a", 300.0, 300.0, 1800.0),
    ] {
        let (code, answer) = server
            .send("POST", "api/data?type=zendure_energy", body)
            .await;
        assert_eq!(code, 200, "{answer}");
    }
    let c = browser(&driver).await;
    c.goto(&server.url).await.unwrap();
    // 1.5 kWh at 0.20 and 0.3 kWh at 0.10: cost 0.33, saving 0.14.
    let row = format!("#energy-days tr[data-date='{yesterday}']");
    let text = wait_text(&c, &row, "0.33").await;
    assert!(text.contains("1.80") && text.contains("0.14"), "{text}");
    assert!(text.contains("1.5 / "), "covered hours: {text}");
    // Each hour: an import bar and a discharge bar.
    wait_count(&c, "#energy-chart rect.bar-import", 2).await;
    assert_eq!(count(&c, "#energy-chart rect.bar-discharged").await, 2);
    assert!(!visible(&c, "#energy-priced").await);
    shot(&c, "8-energy").await;
    assert_eq!(console(&c).await, Vec::<Value>::new());
    c.close().await.unwrap();
}

/// A page on another origin of this machine that tries what the issue
/// found: a `no-cors` POST setting 2400 W all day, a cross-site status
/// `stop`, and a JSON POST (which needs a preflight). It puts what it
/// saw in its title.
fn attack_page(target: &str) -> String {
    format!(
        r#"<!doctype html><title>attacking</title><script>
const t = "{target}";
const charge = '{{"key":"********0000","value":2400}}';
Promise.allSettled([
  fetch(t + "schedule/api/charge_schedule_api.php", {{method: "POST", mode: "no-cors", body: charge}}),
  fetch(t + "schedule/api/charge_schedule_api.php", {{method: "PUT", mode: "no-cors", body: charge,
    headers: {{"Content-Type": "text/plain"}}}}),
  fetch(t + "api/status", {{method: "POST", mode: "no-cors", body: '{{"type":"stop"}}'}}),
  fetch(t + "api/status", {{method: "POST", body: '{{"type":"stop"}}',
    headers: {{"Content-Type": "application/json"}}}}),
]).then(r => {{ document.title = "done " + r.map(x => x.status).join(","); }});
</script>"#
    )
}

#[tokio::test]
async fn a_page_on_another_origin_cannot_write() {
    let driver = Driver::start();
    let server = Server::start(json!({})).await;
    let (code, _) = server
        .send("POST", "api/status", json!({"type": "start"}))
        .await;
    assert_eq!(code, 200);
    let (_, before) = server.get("api/status").await;
    assert_eq!(before["live"]["alive"], true);

    let page = attack_page(&server.url);
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    // 127.0.0.2: another origin and another site, on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let attacker = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let c = browser(&driver).await;
    c.goto(&attacker).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let title = loop {
        let title = c.title().await.unwrap();
        if title.starts_with("done") || Instant::now() > deadline {
            break title;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        title.starts_with("done"),
        "the attack page never finished: {title}"
    );
    c.close().await.unwrap();

    assert!(
        !server.schedule_file().exists(),
        "the schedule was written: {:?}",
        std::fs::read_to_string(server.schedule_file())
    );
    let (_, after) = server.get("api/status").await;
    assert_eq!(after["live"]["alive"], true, "{after}");
    assert_eq!(after["events"], before["events"], "no event was stored");
}
