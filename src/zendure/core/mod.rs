//! The pure core of the Zendure wing: no I/O, no async runtime (a test
//! holds it to that). The adapters in `io` feed it and carry out what it
//! decides.

pub mod controller;
pub mod energy;
pub mod law;
pub mod manual;
pub mod prices;
pub mod reading;
pub mod report;
pub mod schedule;
pub mod status;
pub mod view;
