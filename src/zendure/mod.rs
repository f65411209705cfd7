//! The second system: a Zendure SolarFlow battery on the LAN, following a
//! charge schedule against a P1 meter.

pub mod config;
pub mod controller;
pub mod device;
pub mod http;
pub mod law;
pub mod meter;
pub mod plan_prices;
pub mod price_config;
pub mod price_plan;
pub mod price_schedule;
pub mod prices;
pub mod report;
pub mod schedule;
pub mod source;
pub mod status;
