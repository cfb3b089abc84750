//! Tunables of TCP connections.

use std::time::Duration;

use crate::cc::Algorithm;

/// Keep-alive settings (RFC 1122 4.2.3.6: off by default; if enabled, the
/// idle interval MUST default to no less than two hours).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (ETIMEDOUT).
    pub probes: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            probes: 9,
        }
    }
}

/// Configuration shared by the connections of one stack; sockets may
/// override the per-socket parts (buffers, no-delay, keep-alive, algorithm).
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// MSS we announce: the link MTU minus 40 (set by the stack). A smaller
    /// value (TCP_MAXSEG, Linux's `user_mss`) also bounds the segments we
    /// send: the sender MSS is min(this, the peer's MSS, path MTU - 40).
    pub mss: u16,
    /// Send buffer (SO_SNDBUF) in bytes: the size a connection starts
    /// with.
    pub send_buffer: usize,
    /// Largest size the send buffer grows to on its own (Linux's
    /// `tcp_wmem[2]`; 8 MiB, twice Linux's default): while the buffer, not
    /// the congestion window, is what holds the sender back, it grows with
    /// the window (see `Connection::autotune_send_buffer`), so that data
    /// SACKed behind a hole does not stall a fast path. Growth needs no
    /// memory pressure and stops at this bound; setting SO_SNDBUF sets both
    /// sizes, which turns growth off as Linux's `SOCK_SNDBUF_LOCK` does. At
    /// most `send_buffer` means no growth.
    ///
    /// Why twice Linux's 4 MiB: under loss a hole holds SND.UNA for two
    /// round trips at least (one to find it lost, one to repair it), and a
    /// lost retransmission for a third, so the buffer caps the rate at
    /// about its size over two or three round trips. At 1% loss and 10 ms
    /// (issue 21, BBR, 256 MiB, three runs each) ustack sent 813-823
    /// Mbit/s with 4 MiB, 990-1,090 with 6 MiB and 1,050-1,290 with 8 MiB,
    /// against Linux's 750-1,150 with its 4 MiB. The buffer only grows for a
    /// writer that keeps it full on such a path, and the stack's memory
    /// budget bounds all buffers together (no growth under pressure).
    pub send_buffer_max: usize,
    /// Receive buffer (SO_RCVBUF) in bytes: the size a connection starts
    /// with.
    pub recv_buffer: usize,
    /// Largest size the receive buffer grows to on its own (Linux's
    /// `tcp_rmem[2]`, 6 MiB), and with it the window offered: while the
    /// application reads more per round trip than it did, the buffer
    /// grows to twice that (room for the data held behind a loss) plus
    /// the sender's growth (see `Connection::autotune_recv_buffer`).
    /// Growth needs no memory pressure, stops at this bound and at what
    /// the window scale can advertise; setting SO_RCVBUF sets both sizes,
    /// which turns growth off as Linux's `SOCK_RCVBUF_LOCK` does.
    pub recv_buffer_max: usize,
    /// Our window scale shift (RFC 7323), sent in the SYN.
    pub window_scale: u8,
    /// Offer timestamps (RFC 7323).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018).
    pub sack: bool,
    /// Disable Nagle's algorithm (TCP_NODELAY).
    pub nodelay: bool,
    /// Longest a delayed ACK waits (RFC 5681 4.2: at most 500 ms; RFC 1122
    /// says 0.5 s; ustack defaults to 40 ms like Linux, at most 200 ms).
    pub delayed_ack: Duration,
    /// Lower bound of the retransmission timeout.
    pub min_rto: Duration,
    /// Upper bound of the retransmission timeout (RFC 6298 2.5: at least
    /// 60 seconds).
    pub max_rto: Duration,
    /// SYN retransmissions of an active open before giving up (Linux
    /// `tcp_syn_retries`, 6).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions of a passive open before the half-open
    /// connection is dropped (Linux `tcp_synack_retries`, 5: about 63 s
    /// with the 1 s initial RTO, where 6 would keep a spoofed entry 127 s).
    pub synack_retries: u32,
    /// Retransmission timeouts and zero-window probes an orphaned
    /// connection (closed by the application) gets before it is reset
    /// (Linux `tcp_orphan_retries`, whose 0 means 8).
    pub orphan_retries: u32,
    /// Abort when sent data stays unacknowledged this long (RFC 9293
    /// "user timeout", ETIMEDOUT).
    pub user_timeout: Duration,
    /// Maximum segment lifetime; TIME-WAIT lasts 2*MSL.
    pub msl: Duration,
    /// How long an orphaned connection (closed by the application) waits in
    /// FIN-WAIT-2 for the peer's FIN.
    pub fin_wait2_timeout: Duration,
    /// Keep-alive probing, off when `None`.
    pub keepalive: Option<Keepalive>,
    /// Congestion control algorithm.
    pub congestion: Algorithm,
    /// Least time between two ACKs sent in answer to unacceptable segments
    /// of one connection: out of window, failing PAWS, acknowledging data
    /// never sent, and RFC 5961 challenge ACKs (RFC 5961 7 "ACK
    /// throttling"; Linux `tcp_invalid_ratelimit`, 500 ms). Segments that
    /// carry data are answered regardless, as on Linux: they are not part
    /// of an ACK loop, and their D-SACK tells the sender about spurious
    /// retransmissions.
    pub invalid_ack_interval: Duration,
    /// The IPv4 TOS byte of every segment (IP_TOS). For TCP the two ECN
    /// bits are not the application's (Linux masks them off for stream
    /// sockets); they are sent as 0.
    pub tos: u8,
    /// The IPv4 TTL of every segment (IP_TTL); `None` is the stack's
    /// default (Linux's `net.ipv4.ip_default_ttl`).
    pub ttl: Option<u8>,
    /// TCP_CORK: only full-sized segments go out until uncorked (or for
    /// 200 ms at most, see [`Connection::set_cork`](crate::Connection::set_cork)).
    pub cork: bool,
    /// SO_REUSEADDR of the socket the connection belongs to, kept with the
    /// connection and its TIME-WAIT record (Linux's `sk_reuse` and
    /// `tw_reuse`): a later bind with SO_REUSEADDR may share the local port
    /// only with connections that set it too.
    pub reuse_addr: bool,
    /// How lost segments are detected: RACK-TLP (RFC 8985, the default,
    /// as on Linux) or the RFC 6675 / RFC 5681 duplicate-ACK counting that
    /// came before it (kept to compare the two).
    pub loss_detection: LossDetection,
    /// Pace data segments at a rate derived from cwnd and the smoothed RTT
    /// (200% of cwnd/srtt while cwnd is below half of ssthresh, 120% after,
    /// as Linux's internal pacing), or at the rate the congestion control
    /// algorithm asks for. Off by default: see the README's pacing figures.
    pub pacing: bool,
    /// SO_MAX_PACING_RATE: a cap on the pacing rate in bytes per second;
    /// setting one turns pacing on for the connection (as on Linux).
    /// `None` (the default): no cap.
    pub max_pacing_rate: Option<u64>,
}

/// The loss detector of a connection ([`TcpConfig::loss_detection`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LossDetection {
    /// RACK-TLP (RFC 8985): a segment is lost once a segment sent after it
    /// has been delivered and a reordering window has passed; the same rule
    /// finds lost retransmissions. Tail loss probes replace most timeouts.
    #[default]
    Rack,
    /// RFC 6675 IsLost (DupThresh SACKed segments or bytes above a hole)
    /// and, without SACK, three duplicate ACKs (RFC 5681); lost
    /// retransmissions are noticed once data sent after them is SACKed.
    DupAck,
}

impl LossDetection {
    /// Short lower-case name (`rack`, `dupack`).
    pub fn name(self) -> &'static str {
        match self {
            LossDetection::Rack => "rack",
            LossDetection::DupAck => "dupack",
        }
    }
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            send_buffer: 1 << 20,
            send_buffer_max: 8 << 20,
            recv_buffer: 1 << 20,
            recv_buffer_max: 6 << 20,
            window_scale: 7,
            timestamps: true,
            sack: true,
            nodelay: false,
            delayed_ack: Duration::from_millis(40),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            syn_retries: 6,
            synack_retries: 5,
            orphan_retries: 8,
            user_timeout: Duration::from_secs(300),
            msl: Duration::from_secs(30),
            fin_wait2_timeout: Duration::from_secs(60),
            keepalive: None,
            congestion: Algorithm::Cubic,
            invalid_ack_interval: Duration::from_millis(500),
            tos: 0,
            ttl: None,
            cork: false,
            reuse_addr: false,
            loss_detection: LossDetection::Rack,
            pacing: false,
            max_pacing_rate: None,
        }
    }
}
