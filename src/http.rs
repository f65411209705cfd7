//! HTTP helpers both systems' adapters use.

use std::time::Duration;

/// With HTTPS built in, reqwest builds every client (plain HTTP ones too)
/// on the process-wide rustls crypto provider: ring, as the MQTT side uses.
/// Each builder of a client installs it (the first install stays), so a
/// command that makes no HTTP request sets nothing up.
pub fn install_crypto() {
    #[cfg(feature = "https")]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client builder for a device that speaks plain HTTP on the LAN (the
/// BMS). With HTTPS built in, reqwest would load and parse the system's
/// root certificates for every client, which costs a one-shot `run` more
/// memory and time than all else it does, for TLS it never uses.
pub fn plain_client() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    #[cfg(feature = "https")]
    let builder = {
        install_crypto();
        builder.tls_certs_only([])
    };
    builder
}

/// reqwest's own message wraps the cause (refused, reset) in layers of
/// "error sending request"; log lines want the cause.
pub fn brief(e: &reqwest::Error, limit: Duration) -> String {
    let root = std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
        .last()
        .map(|e| e.to_string())
        .unwrap_or_default();
    if e.is_timeout() {
        format!("timed out after {limit:?}")
    } else if e.is_connect() {
        format!("cannot connect: {root}")
    } else {
        root
    }
}
