pub mod config;
pub mod entries;
pub mod plan;
pub mod tariff;
pub mod view;
