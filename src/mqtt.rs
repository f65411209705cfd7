//! What every MQTT client of zcell-sched shares: the connection options
//! (keep-alive, packet bound, credentials, TLS through rustls).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::ClientConfig;

/// Options for a client `id` of `host:port`; `tls` when the broker speaks
/// MQTT over TLS.
pub fn options(
    id: String,
    host: &str,
    port: u16,
    keep_alive: Duration,
    credentials: Option<(String, String)>,
    tls: Option<ClientConfig>,
) -> MqttOptions {
    let mut mqtt = MqttOptions::new(id, host, port);
    // Packets are bounded both ways: a broker cannot make us buffer more.
    mqtt.set_keep_alive(keep_alive)
        .set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, password)) = credentials {
        mqtt.set_credentials(user, password);
    }
    if let Some(config) = tls {
        mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(config),
        )));
    }
    mqtt
}
