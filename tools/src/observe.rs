//! `ustack ss` and `ustack stats`: what a running stack's control socket
//! (`--control PATH`) reports, the way `ss` and `nstat` show it.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use crate::args::seconds;
use crate::control::{self, CounterSnapshot, SocketRow};

/// Arguments of `ustack ss`.
#[derive(Args, Debug)]
pub struct SsArgs {
    /// The control socket of the running stack (its --control PATH).
    #[arg(long, value_name = "PATH")]
    pub control: PathBuf,
    /// TCP sockets.
    #[arg(short = 't', long)]
    pub tcp: bool,
    /// UDP sockets.
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// Listening sockets only (TCP LISTEN, unconnected UDP and ICMP).
    #[arg(short = 'l', long)]
    pub listening: bool,
    /// Listening and non-listening sockets.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// TCP details: congestion control, cwnd, ssthresh, RTT, RTO, MSS,
    /// retransmissions, SACK and reordering figures, bytes acked/received.
    #[arg(short = 'i', long)]
    pub info: bool,
    /// Numeric addresses (always: ustack resolves no names; accepted as ss
    /// does).
    #[arg(short = 'n', long)]
    pub numeric: bool,
}

/// Arguments of `ustack stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The control socket of the running stack (its --control PATH).
    #[arg(long, value_name = "PATH")]
    pub control: PathBuf,
    /// One JSON object: {"schema": "ustack-stats/1", "counters": {NAME:
    /// N}, "gauges": {NAME: N}, "tcp_states": {STATE: N}} (with --watch:
    /// one object per line, adding "interval_secs" and "rates").
    #[arg(long)]
    pub json: bool,
    /// Every SECS seconds, print the rate per second of each counter that
    /// moved, and the gauges that changed (until interrupted).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub watch: Option<Duration>,
    /// With --watch: stop after N reports.
    #[arg(long, value_name = "N", requires = "watch", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

pub fn run_ss(args: SsArgs) -> Result<(), Box<dyn Error>> {
    let lines = control::query(&args.control, "sockets")?;
    let rows = control::parse_sockets(&lines)?;
    print!("{}", render_ss(&rows, &args));
    Ok(())
}

/// Whether `ss` with these flags lists the socket.
fn selected(row: &SocketRow, args: &SsArgs) -> bool {
    let kind = row.get("kind");
    let kind_ok = match (args.tcp, args.udp) {
        (false, false) => true,
        (t, u) => (t && kind == "tcp") || (u && kind == "udp"),
    };
    let listening = matches!(row.get("state"), "LISTEN" | "UNCONN");
    let state_ok = if args.all {
        true
    } else if args.listening {
        listening
    } else {
        !listening
    };
    kind_ok && state_ok
}

fn peer(row: &SocketRow) -> String {
    match row.get("peer") {
        "*" | "" => "*:*".to_string(),
        p => p.to_string(),
    }
}

/// The `ss` table (and with `-i`, a details line under each TCP connection).
pub fn render_ss(rows: &[SocketRow], args: &SsArgs) -> String {
    let chosen: Vec<&SocketRow> = rows.iter().filter(|r| selected(r, args)).collect();
    let header = [
        "Netid",
        "State",
        "Recv-Q",
        "Send-Q",
        "Local Address:Port",
        "Peer Address:Port",
    ];
    let table: Vec<[String; 6]> = chosen
        .iter()
        .map(|r| {
            [
                r.get("kind").to_string(),
                r.get("state").to_string(),
                r.get("recvq").to_string(),
                r.get("sendq").to_string(),
                r.get("local").to_string(),
                peer(r),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |cells: [&str; 6]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 2 || i == 3 {
                let _ = write!(l, "{cell:>w$} ");
            } else if i == 5 {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$} ");
            }
        }
        l.push('\n');
        l
    };
    out.push_str(&line(header));
    for (row, r) in table.iter().zip(&chosen) {
        out.push_str(&line([
            &row[0], &row[1], &row[2], &row[3], &row[4], &row[5],
        ]));
        if args.info && !r.get("cc").is_empty() {
            let _ = writeln!(out, "\t{}", tcp_details(r));
        }
    }
    out
}

fn ms(us: &str) -> String {
    us.parse::<f64>()
        .map_or_else(|_| us.to_string(), |v| format!("{:.3}", v / 1000.0))
}

/// ss -i style details of one TCP connection.
fn tcp_details(r: &SocketRow) -> String {
    let mut d = format!(
        "{} wscale:{} rto:{} rtt:{}/{} minrtt:{} mss:{} cwnd:{} ssthresh:{}",
        r.get("cc"),
        r.get("wscale"),
        ms(r.get("rto_us")),
        ms(r.get("srtt_us")),
        ms(r.get("rttvar_us")),
        ms(r.get("min_rtt_us")),
        r.get("mss"),
        r.get("cwnd"),
        r.get("ssthresh"),
    );
    let _ = write!(
        d,
        " bytes_sent:{} bytes_retrans:{} bytes_acked:{} bytes_received:{} segs_out:{} segs_in:{}",
        r.get("bytes_sent"),
        r.get("bytes_retrans"),
        r.get("bytes_acked"),
        r.get("bytes_received"),
        r.get("segs_out"),
        r.get("segs_in"),
    );
    // The sending rate the window allows (cwnd per smoothed RTT), as ss's
    // "send" figure.
    if let (Ok(cwnd), Ok(srtt)) = (
        r.get("cwnd").parse::<f64>(),
        r.get("srtt_us").parse::<f64>(),
    ) && srtt > 0.0
    {
        let _ = write!(d, " send:{}", bps(cwnd * 8.0 / (srtt / 1e6)));
    }
    // The pacing rate (bits per second, as ss's pacing_rate) and how
    // often a segment waited for it; absent when the connection does not
    // pace.
    if let Ok(rate) = r.get("pacing_rate").parse::<f64>()
        && rate > 0.0
    {
        let _ = write!(
            d,
            " pacing_rate:{} pacing_waits:{}",
            bps(rate * 8.0),
            r.get("pacing_waits")
        );
    }
    // What the peer acknowledged per second over the last RTT (bytes/s
    // on the wire of the protocol; shown in bits, as ss does).
    if let Ok(rate) = r.get("delivery_rate").parse::<f64>()
        && rate > 0.0
    {
        let _ = write!(d, " delivery_rate:{}", bps(rate * 8.0));
    }
    // BBR's model, as Linux's ss shows it: bbr:(bw:..,mrtt:..,pacing_gain:..)
    if let Ok(bw) = r.get("bbr_bw").parse::<f64>() {
        let _ = write!(
            d,
            " bbr:(mode:{},bw:{},mrtt:{},pacing_gain:{})",
            r.get("bbr_mode"),
            bps(bw * 8.0),
            ms(r.get("bbr_min_rtt_us")),
            r.get("bbr_pacing_gain"),
        );
    }
    let _ = write!(
        d,
        " inflight:{} snd_wnd:{} rcv_wnd:{} retrans:{}/{} rtos:{} recoveries:{} lost_retrans:{} \
         tlp:{} sacked:{} sacked_total:{} dsack:{} ooo:{} zwp:{} challenge_acks:{} paws:{} sack:{} ts:{}",
        r.get("in_flight"),
        r.get("snd_wnd"),
        r.get("rcv_wnd"),
        r.get("retrans_fast"),
        r.get("retrans_rto"),
        r.get("rto_count"),
        r.get("fast_recoveries"),
        r.get("lost_retrans"),
        r.get("tlp"),
        r.get("sacked"),
        r.get("sacked_total"),
        r.get("dsacks"),
        r.get("out_of_order"),
        r.get("zero_window_probes"),
        r.get("challenge_acks"),
        r.get("paws_drops"),
        r.get("sack"),
        r.get("ts"),
    );
    // The buffers' sizes now and how often autotuning grew them (Linux's
    // ss shows the sizes as skmem's tb and rb).
    if !r.get("sndbuf").is_empty() {
        let _ = write!(
            d,
            " sndbuf:{} sndbuf_grown:{} rcvbuf:{} rcvbuf_grown:{}",
            r.get("sndbuf"),
            r.get("sndbuf_grown"),
            r.get("rcvbuf"),
            r.get("rcvbuf_grown")
        );
    }
    if r.get("orphan") == "1" {
        d.push_str(" orphan");
    }
    d
}

fn bps(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.1}Gbps", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1}Mbps", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}Kbps", v / 1e3)
    } else {
        format!("{v:.0}bps")
    }
}

pub fn run_stats(args: StatsArgs) -> Result<(), Box<dyn Error>> {
    let fetch = || -> Result<CounterSnapshot, Box<dyn Error>> {
        let lines = control::query(&args.control, "counters")?;
        Ok(control::parse_counters(&lines)?)
    };
    let Some(interval) = args.watch else {
        let snap = fetch()?;
        if args.json {
            println!("{}", render_json(&snap, None));
        } else {
            print!("{}", render_stats(&snap));
        }
        return Ok(());
    };
    use std::io::Write;
    let mut prev = fetch()?;
    let mut prev_at = Instant::now();
    let mut reports = 0u64;
    loop {
        std::thread::sleep(interval);
        let snap = fetch()?;
        let now = Instant::now();
        let secs = now.duration_since(prev_at).as_secs_f64();
        if args.json {
            println!("{}", render_json(&snap, Some((&prev, secs))));
        } else {
            print!("{}", render_rates(&prev, &snap, secs));
        }
        let _ = std::io::stdout().flush();
        prev = snap;
        prev_at = now;
        reports += 1;
        if args.count.is_some_and(|c| reports >= c) {
            return Ok(());
        }
    }
}

/// Every counter and gauge, then the TCP connections by state.
pub fn render_stats(snap: &CounterSnapshot) -> String {
    let width = snap
        .counters
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in &snap.counters {
        let kind = if c.gauge { "  (gauge)" } else { "" };
        let _ = writeln!(out, "{:<width$} {:>14}{kind}", c.name, c.value);
    }
    let _ = writeln!(out, "tcp connections:");
    for (state, n) in &snap.states {
        let _ = writeln!(out, "  {state:<12} {n:>10}");
    }
    out
}

/// Per-second rates of the counters that moved and the gauges that changed.
pub fn render_rates(prev: &CounterSnapshot, now: &CounterSnapshot, secs: f64) -> String {
    let secs = secs.max(1e-6);
    let mut out = format!("--- {secs:.1} s\n");
    let mut any = false;
    for c in &now.counters {
        let before = prev.get(&c.name).unwrap_or(0);
        if c.gauge {
            if before != c.value {
                let _ = writeln!(out, "{:<40} {:>14} (was {before})", c.name, c.value);
                any = true;
            }
        } else if c.value != before {
            let delta = c.value.saturating_sub(before);
            let _ = writeln!(
                out,
                "{:<40} {:>14.1}/s  ({delta} in the interval, {} in all)",
                c.name,
                delta as f64 / secs,
                c.value
            );
            any = true;
        }
    }
    if !any {
        out.push_str("(nothing moved)\n");
    }
    out
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The documented JSON form (schema `ustack-stats/1`): `counters` (totals
/// that only grow), `gauges` (current values), `tcp_states` (connections
/// per ss state); with a previous snapshot, also `interval_secs` and
/// `rates` (per second, totals only).
pub fn render_json(snap: &CounterSnapshot, prev: Option<(&CounterSnapshot, f64)>) -> String {
    let object = |pairs: Vec<(String, String)>| {
        let body: Vec<String> = pairs
            .into_iter()
            .map(|(k, v)| format!("{}: {v}", json_str(&k)))
            .collect();
        format!("{{{}}}", body.join(", "))
    };
    let counters = snap
        .counters
        .iter()
        .filter(|c| !c.gauge)
        .map(|c| (c.name.clone(), c.value.to_string()))
        .collect();
    let gauges = snap
        .counters
        .iter()
        .filter(|c| c.gauge)
        .map(|c| (c.name.clone(), c.value.to_string()))
        .collect();
    let states = snap
        .states
        .iter()
        .map(|(s, n)| (s.clone(), n.to_string()))
        .collect();
    let mut out = format!(
        "{{\"schema\": \"ustack-stats/1\", \"counters\": {}, \"gauges\": {}, \"tcp_states\": {}",
        object(counters),
        object(gauges),
        object(states)
    );
    if let Some((prev, secs)) = prev {
        let secs = secs.max(1e-6);
        let rates = snap
            .counters
            .iter()
            .filter(|c| !c.gauge)
            .map(|c| {
                let d = c.value.saturating_sub(prev.get(&c.name).unwrap_or(0));
                (c.name.clone(), format!("{:.3}", d as f64 / secs))
            })
            .collect();
        let _ = write!(
            out,
            ", \"interval_secs\": {secs:.3}, \"rates\": {}",
            object(rates)
        );
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests;
