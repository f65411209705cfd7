//! zcell-sched: runs home batteries locally, with no cloud.
//!
//! One folder per system (`zcell`: a Redflow ZCell on a Victron GX;
//! `zendure`: a Zendure SolarFlow on the LAN), and
//! the pieces they share at the top: exit codes, the lock, wall-clock
//! spans, time zones, atomic files, config-file types. On top, the
//! command layer: `cli` is the command line's top, `commands` holds each
//! system's options beside their handlers; nothing below imports them.

pub mod atomic;
pub mod cli;
pub mod commands;
pub mod config;
#[cfg(feature = "discover")]
pub mod discover;
pub mod exit;
pub mod homeassistant;
pub mod http;
pub mod lock;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "serve")]
pub mod serve;
pub mod shutdown;
pub mod span;
#[cfg(any(feature = "mqtt", feature = "https"))]
pub mod tls;
pub mod tz;
pub mod zcell;
#[cfg(feature = "zendure")]
pub mod zendure;

/// One event, one short line on stderr: cron mails it, syslog keeps it.
pub fn log(message: &str) {
    eprintln!("zcell-sched: {message}");
}
