pub mod law;
pub mod prices;
pub mod report;
pub mod schedule;
pub mod view;
