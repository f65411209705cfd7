//! A small blocking HTTP/1.1 client (one request per connection, plain or
//! TLS with one pinned certificate) for the tests and the baseline law.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a request waits for its answer unless told otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP/1.1 exchange on a new connection, closed after the answer.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    exchange(stream, addr, method, path, headers, body)
}

/// The same over TLS, trusting only the certificate in `cert_pem`.
pub fn https_get(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    cert_pem: &Path,
) -> std::io::Result<(u16, String)> {
    use rustls::pki_types::ServerName;
    // The product's own trust: the meter's certificate pinned, or its CA.
    let config = zcell_sched::tls::trusting("--cert", cert_pem, zcell_sched::tls::Names::Ignored)
        .map_err(std::io::Error::other)?;
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(TIMEOUT))?;
    exchange(
        rustls::StreamOwned::new(conn, tcp),
        addr,
        "GET",
        path,
        headers,
        b"",
    )
}

fn exchange(
    mut stream: impl Read + Write,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        // A TLS peer that closes without close_notify: the answer is complete.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e),
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer from {addr}: {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line from {addr}: {head:?}")))?;
    Ok((status, body.to_string()))
}
