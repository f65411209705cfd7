//! The MQTT side of the test environment: a real broker (Debian's
//! mosquitto) on loopback with plain, TLS (test CA), TLS (a self-signed
//! certificate, as a GX has) and password listeners, and the dbus-flashmq
//! emulator bridging it to the simulated GX.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Events, Killed, TestEnv, bin, spawn};

pub const PORTAL: &str = "c0619ab00001";
pub const USER: &str = "zcell";
pub const PASSWORD: &str = "s3cret-token";

pub struct Broker {
    _process: Killed,
    pub plain: u16,
    pub tls: u16,
    pub pinned: u16,
    pub auth: u16,
    pub dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl is missing ({e}): apt-get install openssl"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a server certificate for 127.0.0.1/localhost; a second,
/// untrusted CA; and a self-signed certificate with only CN=venus.local,
/// like a GX's.
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for ca in ["ca", "other-ca"] {
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(&ec);
        let (key, crt) = (format!("{ca}.key"), format!("{ca}.crt"));
        args.extend_from_slice(&[
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            "/CN=zcell-sched test CA",
        ]);
        args.extend_from_slice(&[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &args);
    }
    let mut args = vec!["req"];
    args.extend_from_slice(&ec);
    args.extend_from_slice(&[
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=venus.local",
    ]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(&ec);
    args.extend_from_slice(&[
        "-keyout",
        "gx.key",
        "-out",
        "gx.crt",
        "-days",
        "2",
        "-subj",
        "/CN=venus.local",
    ]);
    openssl(dir, &args);
}

/// Starts mosquitto with `conf` and waits until it listens.
fn mosquitto(conf: &Path) -> Killed {
    // stderr, not stdout: mosquitto buffers stdout when it is a pipe.
    let mut process = Command::new("mosquitto")
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start mosquitto ({e}): apt-get install mosquitto"));
    let stderr = process.stderr.take().expect("piped");
    Events::from_reader(stderr, "mosquitto").wait_for_text(" running");
    Killed(process)
}

/// A plain broker on one loopback port that can be stopped and started
/// again on the same port (as Home Assistant's broker restarts).
pub struct PlainBroker {
    pub port: u16,
    conf: PathBuf,
    process: Option<Killed>,
}

impl PlainBroker {
    pub fn start(dir: &Path) -> PlainBroker {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "user root\nlog_dest stderr\npersistence false\n\
                 listener {port} 127.0.0.1\nallow_anonymous true\n"
            ),
        )
        .unwrap();
        let process = Some(mosquitto(&conf));
        PlainBroker {
            port,
            conf,
            process,
        }
    }

    pub fn stop(&mut self) {
        self.process = None;
    }

    pub fn restart(&mut self) {
        self.stop();
        self.process = Some(mosquitto(&self.conf));
    }
}

impl TestEnv {
    /// Starts the broker and the flashmq emulator (with `emulator_args`,
    /// e.g. `--silent`) over this environment's simulated GX.
    pub fn with_mqtt(mut self, emulator_args: &[&str]) -> TestEnv {
        let dir = self.dir.join("mqtt");
        std::fs::create_dir_all(&dir).unwrap();
        certificates(&dir);
        let passwd = Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(dir.join("passwd"))
            .args([USER, PASSWORD])
            .output()
            .unwrap_or_else(|e| {
                panic!("mosquitto_passwd is missing ({e}): apt-get install mosquitto")
            });
        assert!(passwd.status.success());
        let (plain, tls, pinned, auth) = (free_port(), free_port(), free_port(), free_port());
        let d = dir.display();
        std::fs::write(
            dir.join("mosquitto.conf"),
            format!(
                "per_listener_settings true\nuser root\nlog_dest stderr\npersistence false\n\
                 listener {plain} 127.0.0.1\nallow_anonymous true\n\
                 listener {tls} 127.0.0.1\nallow_anonymous true\n\
                 certfile {d}/server.crt\nkeyfile {d}/server.key\n\
                 listener {pinned} 127.0.0.1\nallow_anonymous true\n\
                 certfile {d}/gx.crt\nkeyfile {d}/gx.key\n\
                 listener {auth} 127.0.0.1\nallow_anonymous false\npassword_file {d}/passwd\n"
            ),
        )
        .unwrap();
        let process = mosquitto(&dir.join("mosquitto.conf"));
        self.broker = Some(Broker {
            _process: process,
            plain,
            tls,
            pinned,
            auth,
            dir: dir.clone(),
        });
        let mut cmd = Command::new(bin("zcell-test-flashmq"));
        cmd.arg("--broker")
            .arg(format!("127.0.0.1:{plain}"))
            .arg("--bus")
            .arg(&self.bus_address)
            .arg("--portal-id")
            .arg(PORTAL)
            .arg("--log")
            .arg(dir.join("w-messages.log"))
            .args(emulator_args);
        let mut flashmq = spawn(&mut cmd, "the flashmq emulator", &dir.join("flashmq.log"));
        Events::of(&mut flashmq, "the flashmq emulator").wait_for("ready");
        self.flashmq = Some(Killed(flashmq));
        self
    }

    fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("with_mqtt was called")
    }

    pub fn mqtt_url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.broker().plain)
    }

    pub fn mqtts_url(&self) -> String {
        format!("mqtts://localhost:{}", self.broker().tls)
    }

    /// The listener with a GX-like self-signed certificate, reached by IP.
    pub fn mqtts_pinned_url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.broker().pinned)
    }

    pub fn mqtt_auth_url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.broker().auth)
    }

    pub fn cert(&self, name: &str) -> String {
        self.broker().dir.join(name).display().to_string()
    }

    /// The W/ messages the emulator has received.
    pub fn w_messages(&self) -> Vec<String> {
        std::fs::read_to_string(self.broker().dir.join("w-messages.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Another MQTT client of the GX (a VRM dashboard, Home Assistant): its
/// messages, read on a thread, with a bound on every wait.
pub struct Client {
    client: rumqttc::Client,
    messages: std::sync::mpsc::Receiver<(String, Vec<u8>)>,
}

impl Client {
    /// Connected to the plain listener and subscribed to `topic` (waits for
    /// the broker's SUBACK, so nothing published afterwards is missed).
    pub fn new(env: &TestEnv, name: &str, topic: &str) -> Client {
        Client::at(env.broker().plain, name, topic)
    }

    /// Connected to the broker on loopback `port`, subscribed to `topic`.
    pub fn at(port: u16, name: &str, topic: &str) -> Client {
        let mut options = rumqttc::MqttOptions::new(name, "127.0.0.1", port);
        options.set_keep_alive(std::time::Duration::from_secs(30));
        let (client, mut connection) = rumqttc::Client::new(options, 64);
        client
            .subscribe(topic, rumqttc::QoS::AtMostOnce)
            .expect("subscribe");
        let (tx, rx) = std::sync::mpsc::channel();
        let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        if tx.send((p.topic, p.payload.to_vec())).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        subscribed
            .recv_timeout(PATIENCE)
            .expect("the broker acknowledges the subscription");
        Client {
            client,
            messages: rx,
        }
    }

    pub fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, rumqttc::QoS::AtMostOnce, false, payload)
            .expect("publish");
    }

    /// A retained message (empty: clears the topic's retained message).
    pub fn retain(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, true, payload)
            .expect("publish");
    }

    /// Messages until one on `topic` whose payload passes `done`; fails
    /// after a bound.
    pub fn until_payload(&self, topic: &str, done: impl Fn(&str) -> bool) -> String {
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let message = self
                .next(left)
                .unwrap_or_else(|| panic!("no fitting {topic} within {PATIENCE:?}; got {seen:?}"));
            if message.0 == topic && done(&message.1) {
                return message.1;
            }
            seen.push(message);
            // Bounded memory on a chatty topic: the newest ones say most.
            if seen.len() > 50 {
                seen.remove(0);
            }
        }
    }

    /// The next message, or None after `wait`.
    pub fn next(&self, wait: std::time::Duration) -> Option<(String, String)> {
        self.messages
            .recv_timeout(wait)
            .ok()
            .map(|(t, p)| (t, String::from_utf8_lossy(&p).into_owned()))
    }

    /// Messages until one on `topic` arrives (included); fails after a bound.
    pub fn until(&self, topic: &str) -> Vec<(String, String)> {
        let mut seen = Vec::new();
        loop {
            let message = self
                .next(PATIENCE)
                .unwrap_or_else(|| panic!("no {topic} within {PATIENCE:?}; got {seen:?}"));
            let done = message.0 == topic;
            seen.push(message);
            if done {
                return seen;
            }
        }
    }

    /// Sends a keepalive, as the VRM dashboard does, and waits for the
    /// full republish it triggers to complete.
    pub fn keep_alive(&self) -> Vec<(String, String)> {
        self.publish(&format!("R/{PORTAL}/keepalive"), "");
        self.until(&format!("N/{PORTAL}/full_publish_completed"))
    }
}

const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);
