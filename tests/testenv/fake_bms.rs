//! A fake Redflow ZCell BMS for the tests and the demo: serves
//! `GET /rest/1.0/status` on loopback, from a file read at every request so
//! a test can change the answer, or misbehaves in a chosen way. Prints
//! `listening http://ADDR` once it accepts connections, then `request ...`
//! for each request.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

#[derive(Parser, Clone)]
struct Args {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The status document, read again at every request.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// HTTP status to answer with.
    #[arg(long, default_value = "200")]
    status: u16,
    /// Wait this long before answering.
    #[arg(long, default_value = "0")]
    delay_ms: u64,
    #[arg(long, value_enum, default_value = "normal")]
    mode: Mode,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Answer with the body file.
    Normal,
    /// Accept and never answer.
    Hang,
    /// Send the headers, then stall forever.
    StallBody,
    /// Send one byte a second, forever.
    Trickle,
    /// Redirect to another host.
    Redirect,
    /// Close the connection without a word.
    Close,
    /// A 50 MiB body.
    Huge,
}

fn respond(mut stream: TcpStream, args: &Args) -> Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    eprintln!("fake-bms: {}", request_line.trim_end());
    // Tests wait on this line to know a request arrived.
    println!("request {}", request_line.trim_end());
    std::io::stdout().flush()?;
    thread::sleep(Duration::from_millis(args.delay_ms));
    let forever = || loop {
        thread::sleep(Duration::from_secs(3600));
    };
    match args.mode {
        Mode::Hang => forever(),
        Mode::Close => return Ok(()),
        Mode::Redirect => {
            write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/rest/1.0/status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return Ok(());
        }
        Mode::StallBody => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
            )?;
            stream.flush()?;
            forever()
        }
        Mode::Trickle => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
            )?;
            loop {
                stream.write_all(b" ")?;
                stream.flush()?;
                thread::sleep(Duration::from_secs(1));
            }
        }
        Mode::Huge => {
            const SIZE: usize = 50 << 20;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {SIZE}\r\n\r\n{{\"list\": ["
            )?;
            let chunk = [b' '; 1 << 16];
            let mut sent = 10;
            while sent < SIZE {
                let n = chunk.len().min(SIZE - sent);
                if stream.write_all(&chunk[..n]).is_err() {
                    return Ok(()); // the client gave up, as it should
                }
                sent += n;
            }
            return Ok(());
        }
        Mode::Normal => {}
    }
    let (status, body) = if !request_line.starts_with("GET /rest/1.0/status ") {
        (404, b"not found".to_vec())
    } else {
        let body = match &args.body_file {
            Some(path) => {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
            }
            None => Vec::new(),
        };
        (args.status, body)
    };
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    anyhow::ensure!(
        listener.local_addr()?.ip().is_loopback(),
        "the fake BMS listens on loopback only"
    );
    println!("listening http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for stream in listener.incoming() {
        let stream = stream?;
        let args = args.clone();
        thread::spawn(move || {
            if let Err(e) = respond(stream, &args) {
                eprintln!("fake-bms: {e:#}");
            }
        });
    }
    Ok(())
}
