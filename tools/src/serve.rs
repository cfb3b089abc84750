//! `ustack serve`: a ustack host on a TAP device. The stack answers ARP and
//! ping by itself; the services run on the public socket API.

use std::error::Error;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::args::{StackArgs, UsageError, seconds};
use crate::services::{
    DEFAULT_MAX_BUSY_HTTP, DEFAULT_MAX_CONNS, DEFAULT_MAX_CONNS_PER_IP, ServiceConfig, Services,
};
use crate::{signals, start};

/// On SIGINT/SIGTERM, how long the stack keeps delivering data the
/// services had written before the connections were closed.
const STOP_LINGER: Duration = Duration::from_secs(2);

/// Arguments of `ustack serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Echo every UDP datagram back to its sender on this port (RFC 862).
    #[arg(long, value_name = "PORT")]
    pub udp_echo: Vec<u16>,
    /// TCP echo service (RFC 862) on this port.
    #[arg(long, value_name = "PORT")]
    pub echo: Vec<u16>,
    /// TCP discard service (RFC 863): reads and throws away.
    #[arg(long, value_name = "PORT")]
    pub discard: Vec<u16>,
    /// TCP character generator: writes a repeating pattern until the peer
    /// closes (in the spirit of RFC 864).
    #[arg(long, value_name = "PORT")]
    pub chargen: Vec<u16>,
    /// HTTP/1.1 static-file server on this port (serves --http-root).
    #[arg(long, value_name = "PORT", requires = "http_root")]
    pub http: Vec<u16>,
    /// iperf3 server on this port (TCP and UDP tests, -R, -P, --bidir), so
    /// that `iperf3 -c` measures ustack; one test at a time.
    #[arg(long, value_name = "PORT")]
    pub iperf3: Vec<u16>,
    /// Directory the HTTP server serves.
    #[arg(long, value_name = "DIR", requires = "http")]
    pub http_root: Option<PathBuf>,
    /// Close a TCP connection that makes no progress this long (echo,
    /// discard: nothing received; chargen: nothing acknowledged), with a
    /// RST. It also caps HTTP's own deadlines: a request head complete
    /// within 10 s of its first byte, 15 s for the next request on a
    /// keep-alive connection, 30 s for a client that takes no output.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = seconds)]
    pub idle_timeout: Duration,
    /// Open TCP connections per service; more are refused with a RST
    /// (HTTP: answered 503 instead, up to 256 such connections at a time).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNS as u64,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_conns: u64,
    /// Open TCP connections per client address, all services together;
    /// more are refused with a RST.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNS_PER_IP as u64,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_conns_per_ip: u64,
}

pub fn run(args: ServeArgs) -> Result<(), Box<dyn Error>> {
    // Check everything that does not need the device before opening it.
    let file_server = match &args.http_root {
        Some(root) => Some(crate::services::file_server(root).map_err(UsageError)?),
        None => None,
    };
    // `--pcap -` streams the capture to standard output (for `| wireshark
    // -k -i -`); the messages then go to standard error.
    let pcap_stdout = args.stack.pcap.as_deref() == Some(std::path::Path::new("-"));
    let mut builder = start::builder(&StackArgs {
        pcap: None,
        ..args.stack.clone()
    })?
    .shutdown_linger(STOP_LINGER);
    if let Some(p) = &args.stack.pcap {
        builder = builder
            .pcap(p.clone())
            .capture_loopback(args.stack.pcap_loopback);
    }
    let mut out: Box<dyn std::io::Write> = if pcap_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    signals::install()?;
    let stack = start::start_with(&args.stack, builder)?;
    let services = Services::start(
        &stack,
        ServiceConfig {
            udp_echo: args.udp_echo,
            echo: args.echo,
            discard: args.discard,
            chargen: args.chargen,
            http: args.http,
            iperf3: args.iperf3,
            messages_to_stderr: pcap_stdout,
            file_server,
            idle_timeout: args.idle_timeout,
            max_conns: args.max_conns as usize,
            max_conns_per_ip: args.max_conns_per_ip as usize,
            max_busy_http: DEFAULT_MAX_BUSY_HTTP,
        },
    )?;
    let link = match args.stack.tun {
        Some(_) => "IP link".to_string(),
        None => format!("MAC {}", stack.mac()),
    };
    writeln!(
        out,
        "ustack: serving {} on {} ({link}, MTU {}, congestion control {})",
        stack.addr(),
        args.stack.device_name(),
        stack.mtu(),
        args.stack.cc
    )?;
    let mut faults = start::fault_config(&args.stack)?;
    if !faults.is_noop() {
        let text = match args.stack.seed {
            Some(seed) => {
                faults.seed = seed;
                faults.to_string()
            }
            None => {
                let text = faults.to_string();
                let text = text.strip_suffix(", seed 0").unwrap_or(&text);
                format!("{text}, random seed")
            }
        };
        writeln!(out, "ustack: fault injection: {text}")?;
    }
    for line in services.describe() {
        writeln!(out, "ustack: {line}")?;
    }

    // SIGUSR1 prints the counters and connection figures of the running
    // stack (to stdout), SIGINT/SIGTERM stop it.
    while signals::wait_for_stop_or_status() == signals::Wake::Status {
        write!(out, "{}", status_report(&stack))?;
        out.flush()?;
    }

    // Statistics of the open connections must be read while they exist.
    let summary = services.summary();
    // Closes every socket (gracefully), delivers what is queued for up to
    // STOP_LINGER, ends the stack thread and flushes the capture.
    stack.stop();
    writeln!(out, "ustack: stopped")?;
    write!(out, "{}", stack.counters())?;
    write!(out, "{}", fault_report(&stack))?;
    write!(out, "{summary}")?;
    if let Some(path) = &args.stack.pcap
        && !pcap_stdout
    {
        writeln!(out, "pcap written to {}", path.display())?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests;

/// The report SIGUSR1 prints: TCP connections by state, then every counter
/// (drops by reason, defences, memory).
fn status_report(stack: &sockets_api::Stack) -> String {
    let states = stack.tcp_states();
    let total: usize = states.iter().map(|(_, n)| n).sum();
    let mut text = format!("ustack: status\ntcp connections: {total}");
    for (state, n) in states {
        text.push_str(&format!(", {n} {state}"));
    }
    text.push('\n');
    text.push_str(&stack.counters().to_string());
    text.push_str(&fault_report(stack));
    text.push_str("ustack: end of status\n");
    text
}

/// What the fault injector did, one line per direction (nothing without
/// fault injection): `fault injection: outbound frames N, lost N, lost
/// payload bytes N, ...`, every counter always printed so that scripts can
/// read them (`scripts/bench` takes the lost payload bytes).
fn fault_report(stack: &sockets_api::Stack) -> String {
    let Some(stats) = stack.fault_stats() else {
        return String::new();
    };
    let mut text = String::new();
    for (name, d) in [("outbound", stats.outbound), ("inbound", stats.inbound)] {
        text.push_str(&fault_line(name, &d));
    }
    text
}

/// One direction's line of [`fault_report`].
fn fault_line(name: &str, d: &sockets_api::DirectionStats) -> String {
    format!(
        "fault injection: {name} frames {}, lost {}, lost payload bytes {}, corrupted {}, \
         duplicated {}, reordered {}, delayed {}, overflow {}, rate-dropped {}, send errors {}\n",
        d.frames,
        d.lost,
        d.lost_payload,
        d.corrupted,
        d.duplicated,
        d.reordered,
        d.delayed,
        d.overflow,
        d.rate_dropped,
        d.send_errors
    )
}
