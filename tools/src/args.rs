//! Argument types the commands share: the stack flags, their value
//! parsers, and the errors that end the program with a given exit code.
//! A leaf: it imports no command module (the commands and `cli` import it).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::Args;
#[cfg(test)]
use clap::Parser;
use ethernet::MacAddr;
use ip::Ipv4Cidr;

/// Flags every command that starts a stack shares.
#[derive(Args, Debug, Clone)]
pub struct StackArgs {
    /// TAP device to open (created if missing).
    #[arg(long, value_name = "NAME", required_unless_present = "tun")]
    pub tap: Option<String>,
    /// TUN device to open instead (created if missing): an IP link, no
    /// Ethernet, no ARP.
    #[arg(long, value_name = "NAME", conflicts_with = "tap")]
    pub tun: Option<String>,
    /// ustack's own address and prefix length.
    #[arg(long, value_name = "A.B.C.D/LEN")]
    pub addr: Ipv4Cidr,
    /// Default gateway for off-link destinations.
    #[arg(long, value_name = "A.B.C.D")]
    pub gateway: Option<Ipv4Addr>,
    /// ustack's MAC address (default: a random locally administered one).
    #[arg(long, value_name = "MAC")]
    pub mac: Option<MacAddr>,
    /// Link MTU (also applied to the TAP device); default: the device's.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(68..))]
    pub mtu: Option<u16>,
    /// Give the kernel side of the TAP this address and bring it up.
    #[arg(long, value_name = "A.B.C.D/LEN")]
    pub host_addr: Option<Ipv4Cidr>,
    /// Write every frame received and sent to this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Also write the traffic the stack delivers to itself (its own
    /// address, 127.0.0.0/8) to the --pcap file; it never crosses the
    /// device, so it is left out by default.
    #[arg(long, requires = "pcap")]
    pub pcap_loopback: bool,
    /// Extra route, e.g. `--route 192.168.0.0/16 via 10.0.0.1` (repeatable).
    #[arg(long, num_args = 3, value_names = ["A.B.C.D/LEN", "via", "A.B.C.D"], action = clap::ArgAction::Append)]
    pub route: Vec<String>,
    /// TTL of datagrams ustack sends.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u8).range(1..))]
    pub ttl: u8,
    /// Drop this fraction of frames, each direction (fault injection).
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub loss: f64,
    /// Duplicate this fraction of frames.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub dup: f64,
    /// Reorder this fraction of frames.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub reorder: f64,
    /// Corrupt one bit in this fraction of frames.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub corrupt: f64,
    /// Delay every frame by this many milliseconds, each direction.
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = milliseconds)]
    pub delay: f64,
    /// Seed for fault injection and the stack's randomness (replayable runs).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// After activity, keep polling the device this many microseconds
    /// before sleeping (lower latency for some CPU; 0 disables).
    #[arg(long, value_name = "US", default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub busy_poll: u64,
    /// TCP congestion control: `cubic`, `newreno` or `bbr`.
    #[arg(long, value_name = "ALGORITHM", default_value = "cubic", value_parser = congestion)]
    pub cc: tcp::cc::Algorithm,
    /// TCP loss detection: `rack` (RACK-TLP, RFC 8985) or `dupack` (RFC 6675
    /// duplicate-ACK counting, the detector before RACK).
    #[arg(long, value_name = "DETECTOR", default_value = "rack", value_parser = loss_detection)]
    pub loss_detection: tcp::LossDetection,
    /// TCP pacing: `on` spreads each connection's data segments at a rate
    /// from cwnd and the smoothed RTT (200% in slow start, 120% after, as
    /// Linux's internal pacing), `off` sends what the windows allow at
    /// once. Default: `TcpConfig::pacing` (off).
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub pacing: Option<bool>,
    /// Turn off TAP offloads (the kernel then hands over, and takes,
    /// wire-sized frames only).
    #[arg(long)]
    pub no_offload: bool,
    /// Memory budget for everything peers can make the stack hold (TCP
    /// buffers, TIME-WAIT, reassembly, ARP and UDP queues), in bytes;
    /// suffixes K, M, G (powers of 1024).
    #[arg(long, value_name = "BYTES", default_value = "256M", value_parser = bytes)]
    pub mem_limit: usize,
    /// SYN cookies: when the SYN queue is full or memory is short (auto),
    /// for every SYN (always), or never (off).
    #[arg(long, value_name = "MODE", default_value = "auto", value_parser = syncookies)]
    pub syncookies: sockets_api::SynCookieMode,
    /// Most TIME-WAIT records (Linux tcp_max_tw_buckets).
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub max_time_wait: usize,
    /// Most orphaned connections (closed, still finishing; Linux
    /// tcp_max_orphans); beyond it a closed connection is reset.
    #[arg(long, value_name = "N", default_value_t = 16_384)]
    pub max_orphans: usize,
    /// Timeouts or zero-window probes an orphaned connection gets (Linux
    /// tcp_orphan_retries).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub orphan_retries: u32,
    /// TCP user timeout: a connection whose data goes unacknowledged, or
    /// whose peer's window stays closed, this long is reset (RFC 5482).
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = seconds)]
    pub user_timeout: std::time::Duration,

    // Observability (issue 20).
    /// Answer `ustack ss` and `ustack stats` on this Unix socket (created
    /// with mode 0600, removed at exit; a stale socket there is replaced).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Serve Prometheus metrics (text format, plain HTTP) on this address
    /// of the host's own network stack, e.g. 127.0.0.1:9100.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
}

/// A byte count with an optional K, M or G suffix (powers of 1024).
pub fn bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a byte count (e.g. 65536, 64K, 256M, 2G)"))?;
    let value = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))?;
    if value < 1 << 20 {
        return Err(format!("{s} is below the 1M minimum"));
    }
    Ok(value)
}

fn syncookies(s: &str) -> Result<sockets_api::SynCookieMode, String> {
    match s {
        "auto" => Ok(sockets_api::SynCookieMode::Auto),
        "always" => Ok(sockets_api::SynCookieMode::Always),
        "off" => Ok(sockets_api::SynCookieMode::Off),
        _ => Err(format!("'{s}' is not one of auto, always, off")),
    }
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability between 0 and 1"))
    }
}

fn milliseconds(s: &str) -> Result<f64, String> {
    let ms: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=60_000.0).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!("{ms} ms is outside 0..=60000"))
    }
}

/// A positive number of seconds (fractions allowed), as a duration.
pub fn seconds(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if secs.is_finite() && secs > 0.0 && secs <= 1e6 {
        Ok(std::time::Duration::from_secs_f64(secs))
    } else {
        Err(format!(
            "{s} is not a number of seconds between 0 (excluded) and 1000000"
        ))
    }
}

fn congestion(s: &str) -> Result<tcp::cc::Algorithm, String> {
    s.parse()
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{s:?}: expected on or off")),
    }
}

fn loss_detection(s: &str) -> Result<tcp::LossDetection, String> {
    match s {
        "rack" => Ok(tcp::LossDetection::Rack),
        "dupack" => Ok(tcp::LossDetection::DupAck),
        _ => Err(format!("unknown loss detection {s:?} (rack or dupack)")),
    }
}

impl StackArgs {
    /// The name of the device (`--tap` or `--tun`).
    pub fn device_name(&self) -> &str {
        self.tun
            .as_deref()
            .or(self.tap.as_deref())
            .unwrap_or_default()
    }

    /// The `--route` triples as routes.
    pub fn routes(&self) -> Result<Vec<ip::Route>, UsageError> {
        self.route
            .chunks(3)
            .map(|c| {
                let [dest, via, gw] = c else {
                    return Err(UsageError("--route needs A.B.C.D/LEN via A.B.C.D".into()));
                };
                let dest: Ipv4Cidr = dest
                    .parse()
                    .map_err(|e| UsageError(format!("invalid value for '--route': {e}")))?;
                if via != "via" {
                    return Err(UsageError(format!(
                        "invalid value for '--route': expected 'via' after {dest}, found '{via}'"
                    )));
                }
                let gw: Ipv4Addr = gw.parse().map_err(|_| {
                    UsageError(format!(
                        "invalid value for '--route': bad gateway address '{gw}'"
                    ))
                })?;
                let dest = Ipv4Cidr::new(dest.network(), dest.prefix_len()).unwrap_or(dest);
                Ok(ip::Route {
                    dest,
                    via: Some(gw),
                })
            })
            .collect()
    }
}

/// A semantically invalid command line (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Ends the program with this exit code and no message (what had to be
/// said was printed already, as `ping` does when nothing answered).
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

#[cfg(test)]
impl StackArgs {
    /// Stack flags for tests that need a value (nothing is opened).
    pub fn for_tests() -> StackArgs {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            stack: StackArgs,
        }
        Wrapper::try_parse_from(["test", "--tap", "t0", "--addr", "10.0.0.2/24"])
            .expect("valid flags")
            .stack
    }
}
