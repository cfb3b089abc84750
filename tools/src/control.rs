//! The control socket (`--control PATH`): a Unix stream socket, mode 0600,
//! served by one thread of its own (never the stack thread), through which
//! `ustack ss` and `ustack stats` read a running stack.
//!
//! The protocol is line based. A client connects, sends one request line
//! (at most [`MAX_REQUEST`] bytes, ending in a newline or at the end of
//! its output) and reads the answer until the server closes:
//!
//! - `counters`: one line per counter, `counter NAME VALUE` (a total that
//!   only grows) or `gauge NAME VALUE` (a current value), in the order and
//!   with the names of [`Counters::entries`] (then the control socket's
//!   own `control_*` counters); then `state STATE N` for every TCP state
//!   (ss names, zero included);
//! - `sockets`: one line per socket, `socket KEY=VALUE ...` with `kind`,
//!   `state`, `local`, `peer` (`*` when unconnected), `recvq`, `sendq`,
//!   `orphan` (0 or 1), and for TCP connections the `TCP_INFO` figures
//!   (see [`socket_line`]);
//! - `version`: `version ustack-control/1`.
//!
//! Every answer ends with the line `end`; a bad request gets
//! `error MESSAGE` and `end`. Values never contain spaces.
//!
//! Bounds: one connection is served at a time (others wait in the kernel's
//! backlog), a request longer than [`MAX_REQUEST`] is refused, and a client
//! gets [`IO_TIMEOUT`] for its request and for taking the answer. Each
//! answer takes the stack lock once, for a walk of the counters or of the
//! socket tables.

use std::error::Error;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockets_api::{Counters, SocketInfo, StackObserver};

/// Longest request line, bytes.
pub const MAX_REQUEST: usize = 512;
/// Time a client gets to send its request, and to take each part of the
/// answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer a client reads (a bound on `ss` against a broken server).
pub const MAX_ANSWER: u64 = 256 << 20;
/// The protocol's name and version (`version` request).
pub const PROTOCOL: &str = "ustack-control/1";

/// TCP states as `ss` names them, in the order `counters` lists them.
pub const TCP_STATES: [tcp::State; 11] = [
    tcp::State::Listen,
    tcp::State::SynSent,
    tcp::State::SynReceived,
    tcp::State::Established,
    tcp::State::FinWait1,
    tcp::State::FinWait2,
    tcp::State::CloseWait,
    tcp::State::Closing,
    tcp::State::LastAck,
    tcp::State::TimeWait,
    tcp::State::Closed,
];

/// The control socket's own counters.
#[derive(Debug, Default)]
pub struct ControlStats {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Requests refused (unknown, too long, not UTF-8).
    pub bad_requests: AtomicU64,
    /// Clients that did not send a request, or take the answer, in time.
    pub timeouts: AtomicU64,
}

/// Paths of the sockets this process created, removed by [`remove_all`].
static CREATED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Binds the control socket at `path` (mode 0600) and starts the thread
/// that answers on it. A stale socket there (nobody answers) is replaced;
/// a live one, or anything that is not a socket, is an error.
pub fn serve(path: &Path, observer: StackObserver) -> Result<(), Box<dyn Error>> {
    let listener = bind(path)?;
    CREATED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.to_path_buf());
    let stats = Arc::new(ControlStats::default());
    std::thread::Builder::new()
        .name("ustack-control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => handle(stream, &observer, &stats),
                    Err(e) => {
                        log::warn!("control socket: accept: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok(())
}

fn bind(path: &Path) -> Result<UnixListener, Box<dyn Error>> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(format!("--control {shown}: another process answers there").into());
            }
            std::fs::remove_file(path)
                .map_err(|e| format!("--control {shown}: cannot remove the stale socket: {e}"))?;
        }
        Ok(_) => return Err(format!("--control {shown}: exists and is not a socket").into()),
        Err(_) => {}
    }
    // SAFETY: umask only changes the process's file creation mask; it is
    // restored at once (the socket is created 0600, with no window where
    // another user could connect).
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| format!("--control {shown}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("--control {shown}: {e}"))?;
    Ok(listener)
}

/// Removes the control sockets this process created (at exit).
pub fn remove_all() {
    for path in CREATED.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        let _ = std::fs::remove_file(path);
    }
}

fn handle(stream: UnixStream, observer: &StackObserver, stats: &ControlStats) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut line = Vec::with_capacity(64);
    let mut reader = BufReader::new((&stream).take(MAX_REQUEST as u64 + 1));
    let answer = match reader.read_until(b'\n', &mut line) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            stats.timeouts.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(_) => return,
        Ok(_) if line.len() > MAX_REQUEST => {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            format!("error request longer than {MAX_REQUEST} bytes\nend\n")
        }
        Ok(_) => match std::str::from_utf8(&line) {
            Ok(request) => answer(request, observer, stats),
            Err(_) => {
                stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                "error request is not UTF-8\nend\n".to_string()
            }
        },
    };
    // Discard what the client sent beyond the request (what is already
    // here, bounded): closing with unread input would reset the
    // connection and lose the answer.
    if stream.set_nonblocking(true).is_ok() {
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match (&stream).read(&mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        let _ = stream.set_nonblocking(false);
    }
    if let Err(e) = (&stream).write_all(answer.as_bytes())
        && matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        )
    {
        stats.timeouts.fetch_add(1, Ordering::Relaxed);
    }
}

/// The answer to one request line (with its final `end` line).
pub fn answer(request: &str, observer: &StackObserver, stats: &ControlStats) -> String {
    let mut out = match request.trim() {
        "counters" => {
            let counters = observer.counters();
            let states = observer.tcp_states();
            stats.requests.fetch_add(1, Ordering::Relaxed);
            render_counters(&counters, &states, stats)
        }
        "sockets" => {
            let sockets = observer.sockets();
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut out = String::with_capacity(sockets.len() * 160);
            for s in &sockets {
                out.push_str(&socket_line(s));
                out.push('\n');
            }
            out
        }
        "version" => {
            stats.requests.fetch_add(1, Ordering::Relaxed);
            format!("version {PROTOCOL}\n")
        }
        other => {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            let shown: String = other.chars().take(40).collect();
            format!(
                "error unknown request '{}' (counters, sockets, version)\n",
                shown.escape_default()
            )
        }
    };
    out.push_str("end\n");
    out
}

/// The `counters` answer, without its `end` line.
pub fn render_counters(
    counters: &Counters,
    states: &[(tcp::State, usize)],
    stats: &ControlStats,
) -> String {
    let mut out = String::with_capacity(8192);
    for e in counters.entries() {
        let kind = if e.gauge { "gauge" } else { "counter" };
        let _ = writeln!(out, "{kind} {} {}", e.name, e.value);
    }
    for (name, v) in [
        ("control_requests", &stats.requests),
        ("control_bad_requests", &stats.bad_requests),
        ("control_timeouts", &stats.timeouts),
    ] {
        let _ = writeln!(out, "counter {name} {}", v.load(Ordering::Relaxed));
    }
    for st in TCP_STATES {
        let n: usize = states
            .iter()
            .filter(|(s, _)| *s == st)
            .map(|(_, n)| n)
            .sum();
        let _ = writeln!(out, "state {} {n}", sockets_api::ss_state_name(st));
    }
    out
}

/// One `socket` line. TCP connections add, after the common fields:
/// `cc` (algorithm), `cwnd` and `ssthresh` (bytes; `ssthresh=-` before it
/// is set), `srtt_us` (`-` before the first sample), `rttvar_us`,
/// `min_rtt_us` (or `-`), `rto_us`, `mss`, `in_flight`, `snd_wnd`,
/// `rcv_wnd`, `bytes_sent`, `bytes_retrans`, `bytes_acked`,
/// `bytes_received`, `segs_out`, `segs_in`, `retrans_fast`, `retrans_rto`,
/// `rto_count`, `fast_recoveries`, `lost_retrans`, `tlp`, `sacked`,
/// `sacked_total`, `dsacks`, `out_of_order`, `zero_window_probes`,
/// `challenge_acks`, `paws_drops`, `sack` and `ts` (0 or 1), `wscale`
/// (`OURS,PEERS` or `-`).
pub fn socket_line(s: &SocketInfo) -> String {
    let mut out = format!(
        "socket kind={} state={} local={} peer={} recvq={} sendq={} orphan={}",
        s.kind.name(),
        s.state,
        s.local,
        s.peer.map_or("*".to_string(), |p| p.to_string()),
        s.recv_queue,
        s.send_queue,
        u8::from(s.orphan)
    );
    if let Some(t) = &s.tcp {
        let us = |d: Duration| d.as_micros().to_string();
        let opt_us = |d: Option<Duration>| d.map_or("-".to_string(), us);
        let ssthresh = if t.ssthresh == usize::MAX {
            "-".to_string()
        } else {
            t.ssthresh.to_string()
        };
        let wscale = t
            .window_scale
            .map_or("-".to_string(), |(a, b)| format!("{a},{b}"));
        let _ = write!(
            out,
            " cc={} cwnd={} ssthresh={ssthresh} srtt_us={} rttvar_us={} min_rtt_us={} rto_us={} \
             mss={} in_flight={} snd_wnd={} rcv_wnd={} bytes_sent={} bytes_retrans={} \
             bytes_acked={} bytes_received={} delivery_rate={} segs_out={} segs_in={} retrans_fast={} \
             retrans_rto={} rto_count={} fast_recoveries={} lost_retrans={} tlp={} tlp_repaired={} \
             tlp_unneeded={} rate_snapshot_merges={} sacked={} \
             sacked_total={} dsacks={} out_of_order={} zero_window_probes={} \
             challenge_acks={} paws_drops={} sack={} ts={} wscale={wscale} pacing_rate={} \
             pacing_waits={} sndbuf={} sndbuf_grown={} rcvbuf={} rcvbuf_grown={}",
            t.congestion.replace(' ', "_"),
            t.cwnd,
            opt_us(t.srtt),
            us(t.rttvar),
            opt_us(t.min_rtt),
            us(t.rto),
            t.mss,
            t.in_flight,
            t.snd_wnd,
            t.rcv_wnd,
            t.bytes_sent,
            t.bytes_retransmitted,
            t.bytes_acked,
            t.bytes_received,
            t.delivery_rate,
            t.segments_sent,
            t.segments_received,
            t.retrans_fast,
            t.retrans_rto,
            t.rto_count,
            t.fast_recoveries,
            t.lost_retransmissions,
            t.tail_loss_probes,
            t.tlp_repaired,
            t.tlp_unneeded,
            t.rate_snapshot_merges,
            t.sacked_bytes,
            t.sacked_total,
            t.dsacks_received,
            t.out_of_order,
            t.zero_window_probes,
            t.challenge_acks,
            t.paws_drops,
            u8::from(t.sack),
            u8::from(t.timestamps),
            t.pacing_rate,
            t.pacing_waits,
            t.send_buffer,
            t.send_buffer_grown,
            t.recv_buffer,
            t.recv_buffer_grown,
        );
        if let Some(b) = t.bbr {
            let _ = write!(
                out,
                " bbr_mode={} bbr_bw={} bbr_min_rtt_us={} bbr_pacing_gain={:.3}",
                b.mode.name(),
                b.bw,
                opt_us(b.min_rtt),
                f64::from(b.pacing_gain_milli) / 1000.0,
            );
        }
    }
    out
}

/// Sends `request` to the control socket at `path` and returns the answer
/// lines without the final `end` (an `error` answer is an error).
pub fn query(path: &Path, request: &str) -> Result<Vec<String>, String> {
    let shown = path.display();
    let mut stream = UnixStream::connect(path)
        .map_err(|e| format!("cannot reach the control socket {shown}: {e}"))?;
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT * 5));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(|e| format!("control socket {shown}: {e}"))?;
    let mut text = String::new();
    stream
        .take(MAX_ANSWER)
        .read_to_string(&mut text)
        .map_err(|e| format!("control socket {shown}: {e}"))?;
    parse_answer(&text).map_err(|e| format!("control socket {shown}: {e}"))
}

/// Splits an answer into its lines, checking the final `end` and turning
/// an `error` line into an error.
pub fn parse_answer(text: &str) -> Result<Vec<String>, String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.last().map(String::as_str) != Some("end") {
        return Err("answer cut short (no final 'end' line)".into());
    }
    lines.pop();
    if let Some(first) = lines.first()
        && let Some(msg) = first.strip_prefix("error ")
    {
        return Err(msg.to_string());
    }
    Ok(lines)
}

/// One counter of a parsed `counters` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: u64,
    /// A gauge rather than a total.
    pub gauge: bool,
}

/// A parsed `counters` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// The counters, in the server's order.
    pub counters: Vec<Counter>,
    /// TCP connections per state (ss names), every state.
    pub states: Vec<(String, u64)>,
}

impl CounterSnapshot {
    /// The value of the counter `name`.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
    }
}

/// Parses the lines of a `counters` answer.
pub fn parse_counters(lines: &[String]) -> Result<CounterSnapshot, String> {
    let mut snap = CounterSnapshot::default();
    for line in lines {
        let mut f = line.split(' ');
        let (Some(kind), Some(name), Some(value), None) = (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(format!("malformed line '{}'", line.escape_default()));
        };
        let value: u64 = value
            .parse()
            .map_err(|_| format!("malformed value in '{}'", line.escape_default()))?;
        match kind {
            "counter" | "gauge" => snap.counters.push(Counter {
                name: name.to_string(),
                value,
                gauge: kind == "gauge",
            }),
            "state" => snap.states.push((name.to_string(), value)),
            _ => return Err(format!("unknown line kind '{}'", kind.escape_default())),
        }
    }
    Ok(snap)
}

/// A parsed `socket` line: its fields in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketRow {
    /// `KEY=VALUE` pairs.
    pub fields: Vec<(String, String)>,
}

impl SocketRow {
    /// The value of field `key` ("" when absent).
    pub fn get(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Parses the lines of a `sockets` answer.
pub fn parse_sockets(lines: &[String]) -> Result<Vec<SocketRow>, String> {
    lines
        .iter()
        .map(|line| {
            let rest = line
                .strip_prefix("socket ")
                .ok_or_else(|| format!("malformed line '{}'", line.escape_default()))?;
            let fields = rest
                .split(' ')
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| format!("malformed field '{}'", kv.escape_default()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SocketRow { fields })
        })
        .collect()
}

#[cfg(test)]
mod tests;
