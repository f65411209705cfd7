//! Zendure's own P1 meter: `GET /properties/report` -> `total_power`.

use anyhow::{Context, Result};
use tokio::time::Instant;

use super::{Meter, Reading, json_watts};
use crate::zendure::io::http::Http;

pub struct ZendureP1 {
    http: Http,
    url: String,
}

impl ZendureP1 {
    pub fn new(http: Http, host_port: &str) -> ZendureP1 {
        ZendureP1 {
            http,
            url: format!("http://{host_port}/properties/report"),
        }
    }
}

impl Meter for ZendureP1 {
    async fn read(&mut self) -> Result<Reading> {
        let body = self
            .http
            .get(&self.url)
            .await
            .with_context(|| self.url.clone())?;
        let grid_w = json_watts(&body, "total_power").with_context(|| self.url.clone())?;
        Ok(Reading {
            grid_w,
            taken: Instant::now(),
        })
    }

    fn describe(&self) -> String {
        format!("zendure-p1 {}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::super::json_watts;

    #[test]
    fn total_power_is_net() {
        let body = br#"{"deviceId":"x","total_power":-350,"a_aprt_power":-350,"b_aprt_power":0,"c_aprt_power":0,"timestamp":1}"#;
        assert_eq!(json_watts(body, "total_power").unwrap(), -350);
        assert!(json_watts(br#"{"total_power":"x"}"#, "total_power").is_err());
        assert!(json_watts(b"<html>", "total_power").is_err());
    }
}
