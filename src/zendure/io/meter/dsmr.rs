//! A raw DSMR telegram stream over TCP (a P1-to-TCP bridge such as
//! ser2net). A telegram runs from `/` to `!` and a CRC-16/ARC of the text
//! up to and including the `!` (DSMR 4 and later, 1-4 hex digits: some
//! meters drop a leading zero; older meters send no CRC, and their
//! telegrams are taken as they are). Net power is `1-0:1.7.0` (import, kW)
//! minus `1-0:2.7.0` (export, kW; 0 where a meter has no such line).
//!
//! The stream is drained on every read and the newest telegram with a valid
//! CRC kept: a meter sending every second read every two must not build up
//! a backlog, which would add its own lag. The parser resynchronises on
//! every `/`, as dsmr_parser's telegram buffer does, so a telegram cut off
//! (a bridge restarted, a byte lost) costs only itself, never the complete
//! telegram after it.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Meter, Reading};

/// Longest telegram accepted; real ones are about 1 KiB.
const MAX_TELEGRAM_BYTES: usize = 16 * 1024;

/// CRC-16/ARC (poly 0x8005 reflected, init 0), as DSMR 4+ uses.
pub fn crc16_arc(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, byte| {
        (0..8).fold(crc ^ u16::from(*byte), |crc, _| {
            if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            }
        })
    })
}

/// Parses one telegram (`/` .. `!` [CRC]); net W, positive = import.
pub fn parse_telegram(text: &str) -> Result<i32> {
    let start = text.find('/').context("no `/` starting the telegram")?;
    let bang = text[start..]
        .find('!')
        .map(|i| start + i)
        .context("no `!` ending the telegram")?;
    let crc_text = text[bang + 1..].lines().next().unwrap_or("").trim();
    if !crc_text.is_empty() {
        let sent = Some(crc_text)
            .filter(|t| t.len() <= 4 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|t| u16::from_str_radix(t, 16).ok())
            .with_context(|| format!("`{crc_text}` is not a CRC"))?;
        let computed = crc16_arc(&text.as_bytes()[start..=bang]);
        ensure!(
            sent == computed,
            "CRC mismatch: the telegram says {sent:04X}, its text gives {computed:04X}"
        );
    }
    let body = &text[start..bang];
    let import = obis_kw(body, "1-0:1.7.0")?.with_context(|| "no `1-0:1.7.0` line")?;
    // Import-only meters (EasyMeter Q3D) send no export line.
    let export = obis_kw(body, "1-0:2.7.0")?.unwrap_or(0.0);
    Ok(((import - export) * 1000.0).round() as i32)
}

/// The value of an OBIS power line like `1-0:1.7.0(01.193*kW)`, in kW;
/// `None` when the telegram has no such line.
fn obis_kw(body: &str, code: &str) -> Result<Option<f64>> {
    let Some(line) = body.lines().find(|l| l.trim_start().starts_with(code)) else {
        return Ok(None);
    };
    let inner = line
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inner, _)| inner)
        .with_context(|| format!("`{line}`: no (value)"))?;
    let (number, unit) = inner.split_once('*').unwrap_or((inner, "kW"));
    let value: f64 = number
        .parse()
        .map_err(|_| anyhow!("`{line}`: `{number}` is not a number"))?;
    match unit {
        "kW" => Ok(Some(value)),
        "W" => Ok(Some(value / 1000.0)),
        other => bail!("`{line}`: unit `{other}` is not power"),
    }
}

/// Splits complete telegrams off the front of `buffer`: each runs from the
/// last `/` before a `!` to the line ending after that `!`, so a telegram
/// cut short is dropped at the next one's `/`. Returns them, leaving the
/// incomplete rest.
pub fn split_telegrams(buffer: &mut Vec<u8>) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let Some(bang) = buffer.iter().position(|b| *b == b'!') else {
            // Keep only from the newest `/`: what is before it can never
            // complete.
            let start = buffer
                .iter()
                .rposition(|b| *b == b'/')
                .unwrap_or(buffer.len());
            buffer.drain(..start);
            return out;
        };
        let Some(eol) = buffer[bang..].iter().position(|b| *b == b'\n') else {
            let start = buffer[..bang]
                .iter()
                .rposition(|b| *b == b'/')
                .unwrap_or(bang);
            buffer.drain(..start);
            return out;
        };
        let end = bang + eol + 1;
        if let Some(start) = buffer[..bang].iter().rposition(|b| *b == b'/') {
            out.push(String::from_utf8_lossy(&buffer[start..end]).into_owned());
        }
        buffer.drain(..end);
    }
}

/// Keeps the newest good reading: a corrupt telegram after a good one must
/// not hide it; an error stands only while no telegram was good.
pub fn newer(kept: Option<Result<i32>>, next: Result<i32>) -> Option<Result<i32>> {
    match (&kept, &next) {
        (Some(Ok(_)), Err(_)) => kept,
        _ => Some(next),
    }
}

pub struct DsmrTcp {
    address: String,
    timeout: Duration,
    telegram_period: Duration,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
    last: Option<Reading>,
}

impl DsmrTcp {
    /// `timeout` bounds connecting; `telegram_period` is how often the
    /// meter sends (1 s for DSMR 5, 10 s before).
    pub fn new(host_port: &str, timeout: Duration, telegram_period: Duration) -> DsmrTcp {
        DsmrTcp {
            address: host_port.to_string(),
            timeout,
            telegram_period,
            stream: None,
            buffer: Vec::new(),
            last: None,
        }
    }

    /// Reads what has arrived, waiting only while no telegram was ever
    /// seen: a whole telegram period plus the timeout, since the first
    /// telegram after connecting is usually cut; the newest good telegram
    /// wins.
    async fn drain(&mut self) -> Result<Option<Result<i32>>> {
        if self.stream.is_none() {
            let connect = TcpStream::connect(&self.address);
            let stream = tokio::time::timeout(self.timeout, connect)
                .await
                .map_err(|_| anyhow!("connecting timed out after {:?}", self.timeout))?
                .context("cannot connect")?;
            self.stream = Some(stream);
            self.buffer.clear();
        }
        let stream = self.stream.as_mut().expect("connected above");
        let wait = self.telegram_period + self.timeout;
        let deadline = Instant::now() + wait;
        let mut newest = None;
        let mut chunk = [0u8; 4096];
        loop {
            let must_wait = newest.is_none() && self.last.is_none();
            let read = if must_wait {
                match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                    Ok(r) => r,
                    Err(_) => bail!(
                        "no whole telegram within {wait:?} (the meter should send one every \
                         {:?}: zendure.meter.telegram_period)",
                        self.telegram_period
                    ),
                }
            } else {
                match stream.try_read(&mut chunk) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(newest),
                    r => r,
                }
            };
            let n = read.context("reading the stream")?;
            ensure!(n > 0, "the stream closed");
            self.buffer.extend_from_slice(&chunk[..n]);
            for telegram in split_telegrams(&mut self.buffer) {
                newest = newer(newest, parse_telegram(&telegram));
            }
            ensure!(
                self.buffer.len() <= MAX_TELEGRAM_BYTES,
                "no telegram end within {MAX_TELEGRAM_BYTES} bytes"
            );
        }
    }
}

impl Meter for DsmrTcp {
    async fn read(&mut self) -> Result<Reading> {
        let drained = self.drain().await;
        if drained.is_err() {
            self.stream = None;
        }
        match drained.with_context(|| format!("dsmr-tcp {}", self.address))? {
            Some(telegram) => {
                let reading = Reading {
                    grid_w: telegram.with_context(|| format!("dsmr-tcp {}", self.address))?,
                    taken: Instant::now(),
                };
                self.last = Some(reading);
                Ok(reading)
            }
            // Nothing new (a meter sending every 10 s): the last one, with
            // its own time, so its age shows.
            None => self
                .last
                .with_context(|| format!("dsmr-tcp {}: no telegram yet", self.address)),
        }
    }

    fn describe(&self) -> String {
        format!("dsmr-tcp {}", self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DSMR 5.0.2 specification's example telegram (P1 companion
    /// standard, chapter 6.12), CRC included.
    pub const EXAMPLE: &str = "/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(101209113020W)\r\n0-0:96.1.1(4B384547303034303436333935353037)\r\n1-0:1.8.1(123456.789*kWh)\r\n1-0:1.8.2(123456.789*kWh)\r\n1-0:2.8.1(123456.789*kWh)\r\n1-0:2.8.2(123456.789*kWh)\r\n0-0:96.14.0(0002)\r\n1-0:1.7.0(01.193*kW)\r\n1-0:2.7.0(00.000*kW)\r\n0-0:96.7.21(00004)\r\n0-0:96.7.9(00002)\r\n1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)(101208151004W)(0000000301*s)\r\n1-0:32.32.0(00002)\r\n1-0:52.32.0(00001)\r\n1-0:72.32.0(00000)\r\n1-0:32.36.0(00000)\r\n1-0:52.36.0(00003)\r\n1-0:72.36.0(00000)\r\n0-0:96.13.0(303132333435363738393A3B3C3D3E3F303132333435363738393A3B3C3D3E3F303132333435363738393A3B3C3D3E3F303132333435363738393A3B3C3D3E3F303132333435363738393A3B3C3D3E3F)\r\n1-0:32.7.0(220.1*V)\r\n1-0:52.7.0(220.2*V)\r\n1-0:72.7.0(220.3*V)\r\n1-0:31.7.0(001*A)\r\n1-0:51.7.0(002*A)\r\n1-0:71.7.0(003*A)\r\n1-0:21.7.0(01.111*kW)\r\n1-0:41.7.0(02.222*kW)\r\n1-0:61.7.0(03.333*kW)\r\n1-0:22.7.0(04.444*kW)\r\n1-0:42.7.0(05.555*kW)\r\n1-0:62.7.0(06.666*kW)\r\n0-1:24.1.0(003)\r\n0-1:96.1.0(3232323241424344313233343536373839)\r\n0-1:24.2.1(101209112500W)(12785.123*m3)\r\n!";

    fn with_crc(body: &str) -> String {
        format!("{body}{:04X}\r\n", crc16_arc(body.as_bytes()))
    }

    #[test]
    fn crc16_arc_check_value() {
        // The catalogue check value of CRC-16/ARC.
        assert_eq!(crc16_arc(b"123456789"), 0xBB3D);
    }

    #[test]
    fn parses_import_minus_export() {
        assert_eq!(parse_telegram(&with_crc(EXAMPLE)).unwrap(), 1193);
        let exporting = EXAMPLE
            .replace("1-0:1.7.0(01.193*kW)", "1-0:1.7.0(00.000*kW)")
            .replace("1-0:2.7.0(00.000*kW)", "1-0:2.7.0(00.457*kW)");
        assert_eq!(parse_telegram(&with_crc(&exporting)).unwrap(), -457);
    }

    #[test]
    fn crc_failure_and_garbage_are_errors() {
        let good = with_crc(EXAMPLE);
        let corrupted = good.replace("01.193", "01.194");
        let e = parse_telegram(&corrupted).unwrap_err().to_string();
        assert!(e.contains("CRC mismatch"), "{e}");
        assert!(parse_telegram(&format!("{EXAMPLE}ZZZZ\r\n")).is_err());
        assert!(parse_telegram("/X\r\n1-0:2.7.0(1.0*kW)\r\n!").is_err());
        assert!(parse_telegram("no telegram").is_err());
        assert!(parse_telegram("/X\r\n1-0:1.7.0(x*kW)\r\n1-0:2.7.0(0*kW)\r\n!").is_err());
        assert!(parse_telegram("/X\r\n1-0:1.7.0(1*V)\r\n1-0:2.7.0(0*kW)\r\n!").is_err());
    }

    #[test]
    fn old_telegrams_without_crc_are_taken() {
        let old = "/KFM5KAIFA-METER\r\n1-0:1.7.0(0000.25*kW)\r\n1-0:2.7.0(0000.00*kW)\r\n!\r\n";
        assert_eq!(parse_telegram(old).unwrap(), 250);
    }

    #[test]
    fn splits_a_stream_into_telegrams() {
        let one = with_crc(EXAMPLE);
        let mut buffer = format!("garbage{one}{one}{}", &one[..100]).into_bytes();
        let telegrams = split_telegrams(&mut buffer);
        assert_eq!(telegrams.len(), 2);
        assert_eq!(buffer, &one.as_bytes()[..100]);
        assert_eq!(parse_telegram(&telegrams[1]).unwrap(), 1193);
    }

    /// The newest good reading of a stream, fed in one piece.
    fn newest_of(stream: &str) -> Option<Result<i32>> {
        let mut buffer = stream.as_bytes().to_vec();
        split_telegrams(&mut buffer)
            .iter()
            .fold(None, |kept, t| newer(kept, parse_telegram(t)))
    }

    #[test]
    fn resynchronises_on_every_slash() {
        let good = with_crc(EXAMPLE);
        let other = with_crc(&EXAMPLE.replace("01.193", "00.500"));
        // Cut, then complete: the complete one is read.
        let cut = &good[..good.len() / 2];
        assert_eq!(newest_of(&format!("{cut}{other}")).unwrap().unwrap(), 500);
        // Unclosed (no `!` ever), then complete.
        let unclosed = &good[..good.find('!').unwrap()];
        assert_eq!(
            newest_of(&format!("{unclosed}\r\n{other}"))
                .unwrap()
                .unwrap(),
            500
        );
        // Good, then corrupt: the good one stands.
        let corrupt = other.replace("00.500", "00.501");
        assert_eq!(
            newest_of(&format!("{good}{corrupt}")).unwrap().unwrap(),
            1193
        );
        // Only corrupt: the error.
        let e = newest_of(&corrupt).unwrap().unwrap_err().to_string();
        assert!(e.contains("CRC mismatch"), "{e}");
    }

    #[test]
    fn a_stream_fed_byte_by_byte_keeps_only_what_can_complete() {
        let good = with_crc(EXAMPLE);
        let stream = format!("{}{good}", &good[..300]);
        let mut buffer = Vec::new();
        let mut found = Vec::new();
        for byte in stream.bytes() {
            buffer.push(byte);
            found.extend(split_telegrams(&mut buffer));
            assert!(
                buffer.len() <= good.len(),
                "the buffer grows past one telegram"
            );
        }
        assert_eq!(found.len(), 1);
        assert_eq!(parse_telegram(&found[0]).unwrap(), 1193);
        assert!(buffer.is_empty());
    }

    #[test]
    fn a_crc_without_leading_zeros_is_read() {
        let body = "/X\r\n1-0:1.7.0(00.100*kW)\r\n1-0:2.7.0(00.000*kW)\r\n!";
        let crc = crc16_arc(body.as_bytes());
        for digits in [format!("{crc:X}"), format!("{crc:04X}"), format!("{crc:x}")] {
            assert_eq!(parse_telegram(&format!("{body}{digits}\r\n")).unwrap(), 100);
        }
        for bad in ["12345", "G1", "-1"] {
            let e = parse_telegram(&format!("{body}{bad}\r\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not a CRC"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_meter_without_an_export_line_reads_its_import() {
        let q3d = "/ESY5Q3DB1024 V3.04\r\n\r\n1-0:1.7.0*255(002124.86*W)\r\n!\r\n";
        assert_eq!(parse_telegram(q3d).unwrap(), 2125);
    }

    #[tokio::test]
    async fn reads_the_newest_telegram_from_a_socket() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let mut meter = DsmrTcp::new(&address, Duration::from_secs(5), Duration::from_secs(1));
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let first = with_crc(EXAMPLE);
            let second = with_crc(&EXAMPLE.replace("01.193", "00.500"));
            socket
                .write_all(format!("{first}{second}").as_bytes())
                .await
                .unwrap();
            socket
        });
        let first = meter.read().await.unwrap();
        // Both telegrams may arrive in one read or two; the newest wins
        // once both are in.
        let socket = server.await.unwrap();
        let second = meter.read().await.unwrap();
        assert!(first.grid_w == 1193 || first.grid_w == 500);
        assert_eq!(second.grid_w, 500);
        drop(socket);
    }

    #[tokio::test]
    async fn the_first_read_waits_a_whole_telegram_period() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        // A DSMR 4 meter: the next telegram comes well after the HTTP
        // timeout, within its period.
        let mut meter = DsmrTcp::new(&address, Duration::from_millis(200), Duration::from_secs(2));
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_millis(800)).await;
            socket
                .write_all(with_crc(EXAMPLE).as_bytes())
                .await
                .unwrap();
            socket
        });
        assert_eq!(meter.read().await.unwrap().grid_w, 1193);
        drop(server.await.unwrap());
    }

    #[tokio::test]
    async fn a_closed_or_silent_stream_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let mut meter = DsmrTcp::new(&address, Duration::from_secs(5), Duration::from_secs(1));
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            drop(socket);
            listener
        });
        let e = format!("{:#}", meter.read().await.unwrap_err());
        assert!(e.contains("closed"), "{e}");
        let listener = server.await.unwrap();
        // Silent: connected, nothing sent within the timeout.
        let mut meter = DsmrTcp::new(
            &address,
            Duration::from_millis(200),
            Duration::from_millis(300),
        );
        let keep = tokio::spawn(async move { listener.accept().await.unwrap() });
        let e = format!("{:#}", meter.read().await.unwrap_err());
        assert!(
            e.contains("no whole telegram within 500ms")
                && e.contains("zendure.meter.telegram_period"),
            "{e}"
        );
        drop(keep);
    }
}
