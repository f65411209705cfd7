//! `zcell-sched serve`: the Zendure schedule (edited through the page or
//! the APIs), the controller's status events and readings (kept in
//! SQLite), and the web page that shows them. One process, no PHP host.

pub mod api;
pub mod config;
mod connections;
pub mod energy;
pub mod guard;
pub mod overrides;
pub mod page;
pub mod plan;
pub mod reply;
pub mod schedule;
pub mod state;
pub mod store;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};

use crate::exit::{Exit, ExitContext, Failure};
use crate::log;
use crate::shutdown;
use crate::zendure::io::schedule_file::ScheduleFile;
use config::ServeConfig;
use state::AppState;
use store::{Bounds, Store};

/// Requests worked on off the runtime's thread at once: the Pi's cores.
pub const BLOCKING: usize = 4;

/// Reads the token file's first line, refusing a token that is easy to
/// guess and warning when others may read the file.
fn read_token(config: &ServeConfig) -> anyhow::Result<Option<String>> {
    let Some(path) = &config.token_file else {
        // Anyone who can reach the port could rewrite the schedule.
        if !config.listen.ip().is_loopback() {
            bail!(
                "listening on {} needs serve.token_file: writes would be open to the LAN",
                config.listen
            );
        }
        anyhow::ensure!(
            config.open_reads,
            "serve.open_reads: false needs serve.token_file: reads can only be closed with a token"
        );
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read serve.token_file {}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    let distinct = token
        .chars()
        .collect::<std::collections::HashSet<_>>()
        .len();
    anyhow::ensure!(
        token.chars().count() >= 16 && distinct >= 6,
        "serve.token_file {}: the token is too easy to guess (at least 16 characters, not \
         nearly all the same); make one with `openssl rand -hex 32`",
        path.display()
    );
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read serve.token_file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        log(&format!(
            "warning: serve.token_file {0} can be read by other users (mode {1:o}): chmod 600 {0}",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(Some(token))
}

/// Serves until SIGTERM/SIGINT: the config file's `serve` object, `listen`
/// overriding its address.
pub async fn run(config_file: Option<&Path>, listen: Option<SocketAddr>) -> Result<(), Failure> {
    let mut config = config::load(config_file).or_exit(Exit::Usage)?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let token = read_token(&config).or_exit(Exit::Usage)?;
    let store = Store::open(
        &config.database,
        Bounds {
            retention: config.retention,
            max_rows: config.max_rows,
            max_bytes: config.max_database,
        },
    )
    .or_exit(Exit::Usage)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))
        .or_exit(Exit::Usage)?;
    let address = listener
        .local_addr()
        .context("the listening address")
        .or_exit(Exit::Usage)?;
    // The Host check compares against the port actually bound.
    config.listen = address;
    let state = Arc::new(AppState {
        schedule: ScheduleFile::new(&config.schedule_file),
        schedule_edit: tokio::sync::Mutex::new(()),
        store: Mutex::new(store),
        blocking: tokio::sync::Semaphore::new(BLOCKING),
        token,
        planning: plan::planning(config_file),
        prices: Default::default(),
        config,
    });
    // Tests and scripts wait for this line before they connect.
    log(&format!("serving http://{address}/"));
    let signalled = shutdown::install()?;
    let stop = async move {
        signalled.await;
    };
    let limits = connections::Limits {
        header_timeout: state.config.header_timeout,
        max: state.config.max_connections,
    };
    connections::serve(listener, router(state), limits, stop).await;
    log("stopped");
    Ok(())
}

/// Every route: the page, the clean API, and the reference server's paths.
/// Public so tests can run the server in-process, without a socket.
pub fn router(state: state::Shared) -> Router {
    let max_body = state.config.max_body;
    Router::new()
        .route("/", get(page::index))
        .route("/assets/{name}", get(page::asset))
        .route(
            "/api/schedule",
            get(api::schedule_get).put(api::schedule_put),
        )
        .route("/api/schedule/plan", post(plan::plan_post))
        .route("/api/status", get(api::status_get).post(api::status_post))
        .route("/api/data", get(api::data_get).post(api::data_post))
        .route("/api/energy", get(energy::get))
        // The reference server's paths, for the tools written against it.
        .route(
            "/schedule/api/charge_schedule_api.php",
            any(api::reference_schedule),
        )
        .route(
            "/schedule/api/automation_status_api.php",
            get(api::reference_status_get).post(api::status_post),
        )
        .route("/data/api/data_api.php", any(api::reference_data))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}
