//! The second system: a Zendure SolarFlow battery on the LAN, following a
//! charge schedule against a P1 meter, driven through its local HTTP API.
//!
//! Pure: `schedule` (format and resolution), `law` (the control step),
//! `view` (text). Adapters: `device`, `meter`, `source` (the schedule's
//! file or URL), `status` (the status file), `report` (events for a
//! server) and `poster` (posting them, queued on disk while the server is
//! down). `controller` runs the loop.

#[cfg(feature = "discover")]
pub mod auto;
pub mod config;
pub mod controller;
pub mod device;
pub mod http;
pub mod law;
pub mod meter;
pub mod plan_prices;
pub mod poster;
pub mod price_config;
pub mod price_plan;
pub mod price_schedule;
pub mod prices;
pub mod report;
pub mod schedule;
pub mod schedule_file;
pub mod source;
pub mod status;
pub mod view;
