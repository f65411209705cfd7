//! The second system: a Zendure SolarFlow battery on the LAN.

pub mod price_config;
pub mod price_plan;
pub mod prices;
