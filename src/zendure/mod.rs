//! The second system: a Zendure SolarFlow battery on the LAN, following a
//! charge schedule against a P1 meter, driven through its local HTTP API.
//!
//! Pure: `schedule` (format and resolution), `law` (the control step),
//! `view` (text). Adapters: `device`, `meter`, `source` (the schedule's
//! file or URL), `status` (the status file), `report` (events for a
//! server) and `poster` (posting them, queued on disk while the server is
//! down). `controller` runs the loop.

pub mod config;
pub mod controller;
pub mod core;
pub mod io;

pub use self::core::prices::{
    config as price_config, entries as price_schedule, plan as price_plan, tariff as prices,
};
pub use self::core::{law, report, schedule, view};
#[cfg(feature = "discover")]
pub use self::io::auto;
pub use self::io::{
    device, http, meter, poster, prices as plan_prices, schedule_file, source, status,
};
