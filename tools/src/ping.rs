//! `ustack ping HOST`: ICMP echo through ustack's ping socket, with the
//! output of Linux's ping (iputils): one line per reply, and on the end
//! (count reached, or SIGINT) the statistics. Exit 0 when any reply came,
//! 1 when none did.

use std::collections::HashMap;
use std::error::Error;
use std::fmt::Write as _;
use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use clap::Args;
use sockets_api::{EchoReply, PingSocket};

use crate::app::{self, trim_float};
use crate::args::{Exit, StackArgs, seconds};
use crate::{signals, start};

/// Largest payload: an IPv4 datagram of 65,535 bytes.
const MAX_SIZE: u16 = 65_535 - 20 - 8;
/// Longest single wait, so SIGINT is noticed promptly.
const SLICE: Duration = Duration::from_millis(100);

#[derive(Args, Debug)]
pub struct PingArgs {
    /// Host to ping: an IPv4 address (or a name from /etc/hosts).
    #[arg(value_name = "HOST")]
    pub host: String,
    /// Stop after sending N requests (default: until interrupted).
    #[arg(short = 'c', long = "count", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Payload bytes per request.
    #[arg(short = 's', long = "size", value_name = "SIZE", default_value_t = 56,
          value_parser = clap::value_parser!(u16).range(0..=i64::from(MAX_SIZE)))]
    pub size: u16,
    /// Seconds between requests.
    #[arg(short = 'i', long = "interval", value_name = "SECS", default_value = "1",
          value_parser = seconds)]
    pub interval: Duration,
    /// Seconds to wait for replies after the last request.
    #[arg(short = 'W', long = "timeout", value_name = "SECS", default_value = "10",
          value_parser = seconds)]
    pub timeout: Duration,
    #[command(flatten)]
    pub stack: StackArgs,
}

/// What came back, for the summary.
#[derive(Default)]
struct Tally {
    transmitted: u64,
    received: u64,
    duplicates: u64,
    rtts: Vec<Duration>,
}

impl Tally {
    /// Linux ping's closing lines.
    fn summary(&self, host: &str, elapsed: Duration) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n--- {host} ping statistics ---");
        let loss = if self.transmitted == 0 {
            0.0
        } else {
            (self.transmitted.saturating_sub(self.received)) as f64 * 100.0
                / self.transmitted as f64
        };
        let _ = write!(
            out,
            "{} packets transmitted, {} received, ",
            self.transmitted, self.received
        );
        if self.duplicates > 0 {
            let _ = write!(out, "+{} duplicates, ", self.duplicates);
        }
        let _ = writeln!(
            out,
            "{}% packet loss, time {}ms",
            trim_float(loss),
            elapsed.as_millis()
        );
        if let Some((min, avg, max, mdev)) = rtt_stats(&self.rtts) {
            let _ = writeln!(
                out,
                "rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms"
            );
        }
        out
    }
}

/// min, mean, max and mean deviation (iputils' mdev: the standard
/// deviation, sqrt(mean(x^2) - mean(x)^2)) in milliseconds.
fn rtt_stats(rtts: &[Duration]) -> Option<(f64, f64, f64, f64)> {
    if rtts.is_empty() {
        return None;
    }
    let ms: Vec<f64> = rtts.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let n = ms.len() as f64;
    let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ms.iter().copied().fold(0.0, f64::max);
    let avg = ms.iter().sum::<f64>() / n;
    let sq = ms.iter().map(|x| x * x).sum::<f64>() / n;
    let mdev = (sq - avg * avg).max(0.0).sqrt();
    Some((min, avg, max, mdev))
}

/// A round-trip time as iputils prints it: fewer decimals as it grows.
fn format_rtt(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

/// The payload of every request: iputils' pattern (byte i is i + 8 after
/// its 8-byte timestamp; here without the timestamp, which ustack keeps).
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i + 8) as u8).collect()
}

pub fn run(args: PingArgs) -> Result<(), Box<dyn Error>> {
    let ip = app::resolve_host(&args.host)?;
    signals::install()?;
    let stack = start::start(&args.stack)?;
    let sock = PingSocket::open(&stack)?;
    let data = payload(usize::from(args.size));
    println!(
        "PING {} ({ip}) {}({}) bytes of data.",
        args.host,
        args.size,
        u32::from(args.size) + 28
    );
    let start = Instant::now();
    let tally = pinger(&sock, ip, &data, &args)?;
    let elapsed = start.elapsed();
    print!("{}", tally.summary(&args.host, elapsed));
    drop(sock);
    stack.stop();
    if tally.received > 0 {
        Ok(())
    } else {
        Err(Box::new(Exit(1)))
    }
}

/// Sends the requests on schedule and prints the replies as they come.
fn pinger(sock: &PingSocket, ip: Ipv4Addr, data: &[u8], args: &PingArgs) -> io::Result<Tally> {
    let mut tally = Tally::default();
    // Sequence number -> (sent at, replies seen).
    let mut outstanding: HashMap<u16, (Instant, u32)> = HashMap::new();
    let mut next_send = Instant::now();
    let mut last_send = next_send;
    while !signals::received() {
        let now = Instant::now();
        let more = args.count.is_none_or(|c| tally.transmitted < c);
        if more && now >= next_send {
            tally.transmitted += 1;
            // iputils numbers from 1 and wraps at 65536.
            let seq = tally.transmitted as u16;
            if let Err(e) = sock.send(ip, seq, data) {
                eprintln!(
                    "ustack ping: sending to {ip}: {}",
                    app::describe_io_error(&e)
                );
            }
            outstanding.insert(seq, (now, 0));
            last_send = now;
            next_send += args.interval;
            continue;
        }
        let until = if more {
            next_send
        } else {
            if tally.received >= tally.transmitted || now >= last_send + args.timeout {
                break;
            }
            last_send + args.timeout
        };
        let wait = until
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(1), SLICE);
        sock.set_read_timeout(Some(wait))?;
        match sock.recv() {
            Ok(reply) => report(&reply, &mut outstanding, &mut tally, data),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(tally)
}

fn report(
    reply: &EchoReply,
    outstanding: &mut HashMap<u16, (Instant, u32)>,
    tally: &mut Tally,
    data: &[u8],
) {
    let Some((sent_at, seen)) = outstanding.get_mut(&reply.seq) else {
        return;
    };
    let rtt = reply.received_at.saturating_duration_since(*sent_at);
    *seen += 1;
    let dup = *seen > 1;
    if dup {
        tally.duplicates += 1;
    } else {
        tally.received += 1;
        tally.rtts.push(rtt);
    }
    let mut line = format!(
        "{} bytes from {}: icmp_seq={} ttl={} time={} ms",
        reply.data.len() + 8,
        reply.from,
        reply.seq,
        reply.ttl,
        format_rtt(rtt)
    );
    if dup {
        line.push_str(" (DUP!)");
    }
    if reply.data != data {
        line.push_str(" (wrong data)");
    }
    println!("{line}");
}

#[cfg(test)]
mod tests;
