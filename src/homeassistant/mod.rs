//! Home Assistant over MQTT discovery, for both systems: the config
//! object, the discovery payloads (pure), and the MQTT session.

pub mod config;
pub mod discovery;
pub mod gx;
#[cfg(feature = "mqtt")]
pub mod session;
#[cfg(all(feature = "mqtt", feature = "zendure"))]
pub mod zendure;
