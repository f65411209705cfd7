//! The second system: a Zendure SolarFlow battery on the LAN, following a
//! charge schedule against a P1 meter.

pub mod config;
pub mod device;
pub mod http;
pub mod law;
pub mod schedule;
