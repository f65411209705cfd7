//! The small HTTP client the device, the HTTP meters and the schedule URL
//! share: one timeout per request, no redirects, no proxies, a bounded body.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};

/// Larger answers are garbage here: a report is a few KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    timeout: Duration,
}

impl Http {
    pub fn new(timeout: Duration) -> Result<Http> {
        Http::from_builder(reqwest::Client::builder(), timeout)
    }

    /// With a caller's builder (TLS settings), the shared limits on top.
    pub fn from_builder(builder: reqwest::ClientBuilder, timeout: Duration) -> Result<Http> {
        crate::http::install_crypto();
        let client = builder
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Http { client, timeout })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// GET `url`; the body of a 2xx answer.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>> {
        self.send(self.client.get(url)).await
    }

    /// POST a JSON body; the body of a 2xx answer.
    pub async fn post_json(&self, url: &str, body: Vec<u8>) -> Result<Vec<u8>> {
        self.send(
            self.client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body),
        )
        .await
    }

    /// Sends a request built by the caller (headers) under the limits.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>> {
        let limit = self.timeout;
        tokio::time::timeout(limit, receive(request, limit))
            .await
            .unwrap_or_else(|_| bail!("timed out after {limit:?}"))
    }
}

async fn receive(request: reqwest::RequestBuilder, limit: Duration) -> Result<Vec<u8>> {
    let mut response = request
        .send()
        .await
        .map_err(|e| anyhow!(crate::http::brief(&e, limit)))?;
    let status = response.status();
    ensure!(status.is_success(), "HTTP {status}");
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| anyhow!("reading the body: {}", crate::http::brief(&e, limit)))?
    {
        ensure!(
            body.len() + chunk.len() <= MAX_BODY_BYTES,
            "the body is larger than {MAX_BODY_BYTES} bytes"
        );
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
