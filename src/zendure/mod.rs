//! The second system: a Zendure SolarFlow battery on the LAN, following a
//! charge schedule against a P1 meter, driven through its local HTTP API.
//!
//! `core` is pure: the schedule and its validator, the control law, the
//! controller's events-in/effects-out core, the status document and its
//! view, and the price planner. `io` holds the adapters: the device, the
//! meters, HTTP, the schedule file and its sources, the status file, the
//! poster, "auto" addresses and the price source. `controller` runs the
//! loop; `config` reads the config file.

pub mod config;
pub mod controller;
pub mod core;
pub mod io;
