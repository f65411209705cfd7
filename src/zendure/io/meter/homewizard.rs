//! HomeWizard P1 meters. API v1: `GET http://host/api/v1/data` ->
//! `active_power_w`. API v2: `GET https://host/api/measurement` ->
//! `power_w`, with `Authorization: Bearer <token>` and `X-Api-Version: 2`;
//! the meter's certificate is signed by HomeWizard's own CA, so it is
//! trusted only through the configured file: the meter's own certificate
//! (pinned) or that CA (names are not checked: the meter is addressed by IP
//! and its certificate names a serial).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::time::Instant;

use super::{Meter, Reading, json_watts};
use crate::zendure::config::Address;
use crate::zendure::io::http::Http;

pub struct HomeWizard {
    http: Http,
    url: String,
    field: &'static str,
    token: Option<String>,
}

impl HomeWizard {
    pub fn v1(http: Http, host_port: &str) -> HomeWizard {
        HomeWizard {
            http,
            url: format!("http://{host_port}/api/v1/data"),
            field: "active_power_w",
            token: None,
        }
    }

    #[cfg(feature = "https")]
    pub fn v2(
        address: &Address,
        token_path: &Path,
        ca_path: &Path,
        timeout: Duration,
    ) -> Result<HomeWizard> {
        let token = std::fs::read_to_string(token_path)
            .with_context(|| format!("zendure.meter.token_file {}", token_path.display()))?
            .trim()
            .to_string();
        anyhow::ensure!(
            !token.is_empty() && token.chars().all(|c| c.is_ascii_alphanumeric()),
            "zendure.meter.token_file {}: not a token (hex digits)",
            token_path.display()
        );
        let tls =
            crate::tls::trusting("zendure.meter.ca_file", ca_path, crate::tls::Names::Ignored)?;
        let builder = reqwest::Client::builder().tls_backend_preconfigured(tls);
        Ok(HomeWizard {
            http: Http::from_builder(builder, timeout)?,
            url: format!("https://{}/api/measurement", address.with_port(443)),
            field: "power_w",
            token: Some(token),
        })
    }

    #[cfg(not(feature = "https"))]
    pub fn v2(
        _address: &Address,
        _token_path: &Path,
        _ca_path: &Path,
        _timeout: Duration,
    ) -> Result<HomeWizard> {
        anyhow::bail!(
            "zendure.meter.kind: homewizard-v2 needs HTTPS, and this build has none (cargo feature `https`)"
        )
    }
}

impl Meter for HomeWizard {
    async fn read(&mut self) -> Result<Reading> {
        let mut request = self.http.client().get(&self.url);
        if let Some(token) = &self.token {
            request = request
                .header(reqwest::header::AUTHORIZATION, format!("Bearer {token}"))
                .header("X-Api-Version", "2");
        }
        let body = self
            .http
            .send(request)
            .await
            .with_context(|| self.url.clone())?;
        let grid_w = json_watts(&body, self.field).with_context(|| self.url.clone())?;
        Ok(Reading {
            grid_w,
            taken: Instant::now(),
        })
    }

    fn describe(&self) -> String {
        let kind = if self.token.is_some() {
            "homewizard-v2"
        } else {
            "homewizard"
        };
        format!("{kind} {}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::super::json_watts;

    #[test]
    fn v1_and_v2_fields() {
        let v1 = br#"{"wifi_ssid":"x","active_power_w":-543.2,"active_power_l1_w":-543.2,"total_power_import_kwh":1.5}"#;
        assert_eq!(json_watts(v1, "active_power_w").unwrap(), -543);
        let v2 = br#"{"power_w":1234.6,"power_l1_w":1234.6,"energy_import_kwh":2.0}"#;
        assert_eq!(json_watts(v2, "power_w").unwrap(), 1235);
        assert!(json_watts(v2, "active_power_w").is_err());
    }
}
