//! `--metrics ADDR:PORT`: the counters and per-state connection counts in
//! the Prometheus text exposition format (version 0.0.4), over plain
//! HTTP/1.1 on a socket of the host's own network stack (for the host's
//! monitoring; it never touches the ustack interface).
//!
//! Names: every total is `ustack_<name>_total`, every gauge
//! `ustack_<name>`, with the names of `Counters::entries`; drops are one
//! family, `ustack_drops_total{reason="<key>"}`; TCP connections are
//! `ustack_tcp_connections{state="ESTAB"}` (every state, zero included).
//!
//! Bounds: one client is served at a time (others wait in the kernel's
//! backlog), a request head is read up to [`MAX_HEAD`] bytes within
//! [`IO_TIMEOUT`], then the connection is closed. `ustack_metrics_requests_total`
//! and `ustack_metrics_bad_requests_total` count them.

use std::error::Error;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sockets_api::StackObserver;

use crate::control::{CounterSnapshot, TCP_STATES};

/// Largest request head read, bytes.
pub const MAX_HEAD: usize = 8192;
/// Time a client gets to send its request head, and to take the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static BAD_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Binds `addr` and starts the thread that answers scrapes.
pub fn serve(addr: SocketAddr, observer: StackObserver) -> Result<(), Box<dyn Error>> {
    let listener =
        TcpListener::bind(addr).map_err(|e| format!("--metrics {addr}: cannot listen: {e}"))?;
    std::thread::Builder::new()
        .name("ustack-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => handle(stream, &observer),
                    Err(e) => {
                        log::warn!("metrics: accept: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok(())
}

fn handle(mut stream: TcpStream, observer: &StackObserver) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n.min(MAX_HEAD - head.len())]),
            Err(_) => {
                BAD_REQUESTS.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    let response = respond(&head, || {
        let counters = observer.counters();
        let states = observer.tcp_states();
        snapshot(&counters, &states)
    });
    let _ = stream.write_all(&response);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Let the client read everything before the close (no RST on unread input).
    let _ = stream.read(&mut buf);
}

/// The counters of a stack in the form the control socket sends them.
pub fn snapshot(
    counters: &sockets_api::Counters,
    states: &[(tcp::State, usize)],
) -> CounterSnapshot {
    let lines: Vec<String> = crate::control::render_counters(counters, states, &Default::default())
        .lines()
        .filter(|l| !l.contains(" control_"))
        .map(str::to_string)
        .collect();
    crate::control::parse_counters(&lines).unwrap_or_default()
}

/// The HTTP answer to a request head; `metrics` is called only for a
/// scrape (`GET /metrics` or `GET /`).
pub fn respond(head: &[u8], metrics: impl FnOnce() -> CounterSnapshot) -> Vec<u8> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().split(' ');
    let (status, body) = match (parts.next(), parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics" | "/"), Some(v)) if v.starts_with("HTTP/1.") => {
            REQUESTS.fetch_add(1, Ordering::Relaxed);
            ("200 OK", render(&metrics()))
        }
        (Some("GET"), Some(_), Some(v)) if v.starts_with("HTTP/1.") => {
            BAD_REQUESTS.fetch_add(1, Ordering::Relaxed);
            ("404 Not Found", "not found: try /metrics\n".to_string())
        }
        (Some(_), Some(_), Some(v)) if v.starts_with("HTTP/1.") => {
            BAD_REQUESTS.fetch_add(1, Ordering::Relaxed);
            ("405 Method Not Allowed", "only GET\n".to_string())
        }
        _ => {
            BAD_REQUESTS.fetch_add(1, Ordering::Relaxed);
            ("400 Bad Request", "bad request\n".to_string())
        }
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

/// The Prometheus text exposition of a counter snapshot.
pub fn render(snap: &CounterSnapshot) -> String {
    let mut out = String::with_capacity(16384);
    let helps: std::collections::HashMap<String, &'static str> = sockets_api::Counters::default()
        .entries()
        .into_iter()
        .map(|e| (e.name, e.help))
        .collect();
    for c in &snap.counters {
        if c.name.starts_with("drop_") || c.name == "drops_total" {
            continue;
        }
        let (metric, kind) = if c.gauge {
            (format!("ustack_{}", c.name), "gauge")
        } else {
            (format!("ustack_{}_total", c.name), "counter")
        };
        let help = helps.get(&c.name).copied().unwrap_or("A ustack counter.");
        let _ = writeln!(out, "# HELP {metric} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {metric} {kind}");
        let _ = writeln!(out, "{metric} {}", c.value);
    }
    let _ = writeln!(
        out,
        "# HELP ustack_drops_total Packets dropped, by reason.\n# TYPE ustack_drops_total counter"
    );
    for c in &snap.counters {
        if let Some(reason) = c.name.strip_prefix("drop_") {
            let _ = writeln!(
                out,
                "ustack_drops_total{{reason=\"{}\"}} {}",
                escape_label(reason),
                c.value
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ustack_tcp_connections TCP connections by state (ss names).\n\
         # TYPE ustack_tcp_connections gauge"
    );
    for st in TCP_STATES {
        let name = sockets_api::ss_state_name(st);
        let n = snap
            .states
            .iter()
            .find(|(s, _)| s == name)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "ustack_tcp_connections{{state=\"{name}\"}} {n}");
    }
    for (metric, help, v) in [
        (
            "ustack_metrics_requests_total",
            "Scrapes answered.",
            &REQUESTS,
        ),
        (
            "ustack_metrics_bad_requests_total",
            "Metrics requests refused or cut short.",
            &BAD_REQUESTS,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {metric} {help}\n# TYPE {metric} counter\n{metric} {}",
            v.load(Ordering::Relaxed)
        );
    }
    out
}

#[cfg(test)]
mod tests;
