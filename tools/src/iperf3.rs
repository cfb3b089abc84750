//! iperf3 compatibility: the wire protocol of iperf3 (3.x, as Debian's
//! 3.12 speaks it), a server (`ustack serve --iperf3 PORT`, [`server`])
//! and a client (`ustack iperf3 -c HOST`, [`client`]).
//!
//! The protocol, learnt from iperf3's sources (no code taken):
//!
//! * The client opens a TCP control connection and sends a 37-byte
//!   cookie (36 characters and a NUL) naming its test.
//! * Each side then drives the other with one-byte state messages
//!   ([`state`]): the server asks for the parameters (`PARAM_EXCHANGE`),
//!   which come back as a JSON object preceded by its length (4 bytes,
//!   big-endian); it asks for the data streams (`CREATE_STREAMS`), starts
//!   the test (`TEST_START`, `TEST_RUNNING`); the client ends it
//!   (`TEST_END`); the server asks for the results (`EXCHANGE_RESULTS`:
//!   the client sends its JSON results, the server answers with its own),
//!   then `DISPLAY_RESULTS`, and the client closes with `IPERF_DONE`.
//! * TCP data streams are more connections to the same port, each
//!   opening with the test's cookie; one that does not match, or a
//!   second control connection while a test runs, gets `ACCESS_DENIED`
//!   (one byte, -1) and is closed.
//! * UDP data streams: the client sends a 4-byte datagram to the
//!   server's port, the server answers a 4-byte reply to that address.
//!   Every data datagram starts with the sender's clock (seconds and
//!   microseconds, 32 bits each, big-endian) and a packet number (32 or,
//!   with `udp_counters_64bit`, 64 bits); the receiver counts gaps as
//!   losses and estimates jitter as RFC 3550 does.
//!
//! What is here is sans-IO: parameters and results to and from JSON, the
//! UDP header, the receiver's loss and jitter accounting, pacing.

pub mod client;
pub mod server;
mod streams;

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value, json};

/// The one-byte state messages of the control connection (iperf.h).
pub mod state {
    pub const TEST_START: i8 = 1;
    pub const TEST_RUNNING: i8 = 2;
    pub const TEST_END: i8 = 4;
    pub const PARAM_EXCHANGE: i8 = 9;
    pub const CREATE_STREAMS: i8 = 10;
    pub const SERVER_TERMINATE: i8 = 11;
    pub const CLIENT_TERMINATE: i8 = 12;
    pub const EXCHANGE_RESULTS: i8 = 13;
    pub const DISPLAY_RESULTS: i8 = 14;
    pub const IPERF_START: i8 = 15;
    pub const IPERF_DONE: i8 = 16;
    pub const ACCESS_DENIED: i8 = -1;
    pub const SERVER_ERROR: i8 = -2;
}

/// iperf3's error numbers this implementation sends after `SERVER_ERROR`
/// (iperf_api.h), each followed by an errno (0 here).
pub mod errors {
    /// Number of parallel streams too large.
    pub const IENUMSTREAMS: i32 = 6;
    /// Block size too large.
    pub const IEBLOCKSIZE: i32 = 7;
    /// Not implemented.
    pub const IEUNIMP: i32 = 13;
    /// UDP block size invalid.
    pub const IEUDPBLOCKSIZE: i32 = 20;
    /// Unable to receive parameters from the client.
    pub const IERECVPARAMS: i32 = 114;
    /// Unable to start the stream listener.
    pub const IESTREAMLISTEN: i32 = 202;

    /// What an error number a server sent means (those above; others by
    /// number only).
    pub fn describe(code: i32) -> &'static str {
        match code {
            IENUMSTREAMS => "too many parallel streams",
            IEBLOCKSIZE => "block size too large",
            IEUNIMP => "not implemented",
            IEUDPBLOCKSIZE => "UDP block size invalid",
            IERECVPARAMS => "it could not read the parameters",
            IESTREAMLISTEN => "it could not start the stream listener",
            _ => "see iperf3's iperf_api.h",
        }
    }
}

/// Length of the test cookie, its NUL included.
pub const COOKIE_SIZE: usize = 37;
/// Default iperf3 port.
pub const DEFAULT_PORT: u16 = 5201;
/// Most parallel streams a test may ask for (iperf3's own limit).
pub const MAX_STREAMS: u32 = 128;
/// Longest JSON message (parameters or results) accepted; a longer
/// length prefix ends the test.
pub const MAX_JSON: usize = 64 * 1024;
/// Default TCP block (one write or read), as iperf3's.
pub const DEFAULT_TCP_BLKSIZE: usize = 128 * 1024;
/// Largest block a test may ask for (iperf3's MAX_BLOCKSIZE).
pub const MAX_BLKSIZE: usize = 1 << 20;
/// Smallest UDP datagram: the clock and a 64-bit packet number.
pub const MIN_UDP_BLKSIZE: usize = 16;
/// Largest UDP payload in one IPv4 datagram.
pub const MAX_UDP_BLKSIZE: usize = 65_535 - 8 - 20;
/// UDP payload when neither side says (a typical Ethernet MSS).
pub const DEFAULT_UDP_BLKSIZE: usize = 1448;
/// UDP rate when the client gives none: 1 Mbit/s, like iperf3.
pub const DEFAULT_UDP_RATE: u64 = 1 << 20;
/// Longest test duration accepted (iperf3's MAX_TIME).
pub const MAX_TIME: u32 = 86_400;

/// The datagram a UDP stream opens with (`"6789"` read as a host-order
/// integer on a little-endian machine; older clients send 123456789, and
/// the server does not look).
pub const UDP_CONNECT_MSG: u32 = 0x3637_3839;
/// The server's answer, and the legacy answer older servers send.
pub const UDP_CONNECT_REPLY: u32 = 0x3938_3736;
pub const LEGACY_UDP_CONNECT_REPLY: u32 = 987_654_321;

/// Whether a 4-byte datagram is one of the connect replies. iperf3 writes
/// them in host order; the reply is the byte-swapped connect message, so
/// only the legacy reply is also taken big-endian (from a big-endian
/// server), never the current one (that would be our own message).
pub fn is_connect_reply(buf: &[u8]) -> bool {
    let Ok(b) = <[u8; 4]>::try_from(buf) else {
        return false;
    };
    let le = u32::from_le_bytes(b);
    le == UDP_CONNECT_REPLY
        || le == LEGACY_UDP_CONNECT_REPLY
        || u32::from_be_bytes(b) == LEGACY_UDP_CONNECT_REPLY
}

/// Protocol of a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        })
    }
}

/// The parameters a client sends (the subset ustack acts on; other keys
/// are ignored).
#[derive(Clone, Debug, PartialEq)]
pub struct TestParams {
    pub protocol: Protocol,
    /// Seconds; 0 when the test ends on a byte or block count instead.
    pub time: u32,
    /// Seconds at the start left out of the figures (ignored here).
    pub omit: u32,
    /// End after this many bytes (0: on time).
    pub bytes: u64,
    /// End after this many blocks (0: on time).
    pub blocks: u64,
    /// Streams per direction, 1 to [`MAX_STREAMS`].
    pub parallel: u32,
    /// The server sends, the client receives (`-R`).
    pub reverse: bool,
    /// Both send (`--bidir`).
    pub bidirectional: bool,
    /// Block size (bytes per write, or per datagram).
    pub len: usize,
    /// Target rate per stream in bit/s (0: unlimited; UDP defaults to
    /// [`DEFAULT_UDP_RATE`]).
    pub bandwidth: u64,
    /// UDP packet numbers are 64 bits.
    pub udp_counters_64bit: bool,
    /// The client wants the server's output in the results.
    pub get_server_output: bool,
    pub client_version: Option<String>,
}

impl Default for TestParams {
    fn default() -> Self {
        TestParams {
            protocol: Protocol::Tcp,
            time: 10,
            omit: 0,
            bytes: 0,
            blocks: 0,
            parallel: 1,
            reverse: false,
            bidirectional: false,
            len: DEFAULT_TCP_BLKSIZE,
            bandwidth: 0,
            udp_counters_64bit: false,
            get_server_output: false,
            client_version: None,
        }
    }
}

/// Why a parameter message was refused: the iperf3 error number sent
/// back, and a description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    pub code: i32,
    pub what: String,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

fn param_error(code: i32, what: impl Into<String>) -> ParamError {
    ParamError {
        code,
        what: what.into(),
    }
}

/// A non-negative integer field (iperf3 writes every number as a JSON
/// number, possibly with a fraction).
fn uint(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, ParamError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) => Ok(Some(n)),
            None => match v.as_f64() {
                Some(f) if f >= 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
                _ => Err(param_error(
                    errors::IERECVPARAMS,
                    format!("parameter {key} is not a non-negative number"),
                )),
            },
        },
    }
}

impl TestParams {
    /// Total streams of the test (both directions with `--bidir`).
    pub fn total_streams(&self) -> usize {
        self.parallel as usize * if self.bidirectional { 2 } else { 1 }
    }

    /// Whether the client sends (its streams are senders).
    pub fn client_sends(&self) -> bool {
        !self.reverse || self.bidirectional
    }

    /// Whether the client receives.
    pub fn client_receives(&self) -> bool {
        self.reverse || self.bidirectional
    }

    /// Roles of the streams in the order they are opened, from the
    /// client's side: `true` for a stream the client sends on. With
    /// `--bidir` the client opens its sending streams first.
    pub fn client_roles(&self) -> Vec<bool> {
        let n = self.parallel as usize;
        let mut roles = Vec::with_capacity(self.total_streams());
        if self.client_sends() {
            roles.extend(std::iter::repeat_n(true, n));
        }
        if self.client_receives() {
            roles.extend(std::iter::repeat_n(false, n));
        }
        roles
    }

    /// The rate each sending stream is held to, in bit/s (0: none).
    pub fn rate(&self) -> u64 {
        match (self.protocol, self.bandwidth) {
            (Protocol::Udp, 0) => DEFAULT_UDP_RATE,
            (_, b) => b,
        }
    }

    /// The JSON object a client sends.
    pub fn to_json(&self) -> String {
        let mut o = Map::new();
        match self.protocol {
            Protocol::Tcp => o.insert("tcp".into(), Value::Bool(true)),
            Protocol::Udp => o.insert("udp".into(), Value::Bool(true)),
        };
        o.insert("omit".into(), json!(self.omit));
        o.insert("time".into(), json!(self.time));
        o.insert("num".into(), json!(self.bytes));
        o.insert("blockcount".into(), json!(self.blocks));
        o.insert("parallel".into(), json!(self.parallel));
        if self.reverse {
            o.insert("reverse".into(), Value::Bool(true));
        }
        if self.bidirectional {
            o.insert("bidirectional".into(), Value::Bool(true));
        }
        o.insert("len".into(), json!(self.len));
        if self.bandwidth > 0 {
            o.insert("bandwidth".into(), json!(self.bandwidth));
        }
        o.insert("pacing_timer".into(), json!(1000));
        if self.udp_counters_64bit {
            o.insert("udp_counters_64bit".into(), json!(1));
        }
        if self.get_server_output {
            o.insert("get_server_output".into(), json!(1));
        }
        if let Some(v) = &self.client_version {
            o.insert("client_version".into(), json!(v));
        }
        Value::Object(o).to_string()
    }

    /// Parses and checks a client's parameters. Unknown keys are ignored;
    /// a missing `len` takes the protocol's default.
    pub fn from_json(text: &[u8]) -> Result<TestParams, ParamError> {
        let value: Value = serde_json::from_slice(text).map_err(|e| {
            param_error(
                errors::IERECVPARAMS,
                format!("parameters are not JSON: {e}"),
            )
        })?;
        let Value::Object(o) = value else {
            return Err(param_error(
                errors::IERECVPARAMS,
                "parameters are not a JSON object",
            ));
        };
        let protocol = if o.contains_key("sctp") {
            return Err(param_error(errors::IEUNIMP, "SCTP is not supported"));
        } else if o.contains_key("udp") {
            Protocol::Udp
        } else {
            Protocol::Tcp
        };
        let time = uint(&o, "time")?.unwrap_or(10);
        if time > u64::from(MAX_TIME) {
            return Err(param_error(
                errors::IERECVPARAMS,
                format!("test time {time} s is over {MAX_TIME} s"),
            ));
        }
        let omit = uint(&o, "omit")?.unwrap_or(0).min(u64::from(MAX_TIME)) as u32;
        let parallel = uint(&o, "parallel")?.unwrap_or(1);
        if parallel == 0 || parallel > u64::from(MAX_STREAMS) {
            return Err(param_error(
                errors::IENUMSTREAMS,
                format!("{parallel} parallel streams (1 to {MAX_STREAMS})"),
            ));
        }
        let len = match (uint(&o, "len")?, protocol) {
            (None | Some(0), Protocol::Tcp) => DEFAULT_TCP_BLKSIZE as u64,
            (None | Some(0), Protocol::Udp) => DEFAULT_UDP_BLKSIZE as u64,
            (Some(n), _) => n,
        };
        match protocol {
            Protocol::Tcp if len > MAX_BLKSIZE as u64 => {
                return Err(param_error(
                    errors::IEBLOCKSIZE,
                    format!("block size {len} is over {MAX_BLKSIZE}"),
                ));
            }
            Protocol::Udp if len < MIN_UDP_BLKSIZE as u64 || len > MAX_UDP_BLKSIZE as u64 => {
                return Err(param_error(
                    errors::IEUDPBLOCKSIZE,
                    format!("UDP block size {len} (from {MIN_UDP_BLKSIZE} to {MAX_UDP_BLKSIZE})"),
                ));
            }
            _ => {}
        }
        let flag = |k: &str| o.get(k).is_some_and(|v| !v.is_null());
        Ok(TestParams {
            protocol,
            time: time as u32,
            omit,
            bytes: uint(&o, "num")?.unwrap_or(0),
            blocks: uint(&o, "blockcount")?.unwrap_or(0),
            parallel: parallel as u32,
            reverse: flag("reverse"),
            bidirectional: flag("bidirectional"),
            len: len as usize,
            bandwidth: uint(&o, "bandwidth")?.unwrap_or(0),
            udp_counters_64bit: flag("udp_counters_64bit"),
            get_server_output: flag("get_server_output"),
            client_version: o
                .get("client_version")
                .and_then(Value::as_str)
                .map(|s| s.chars().take(64).collect()),
        })
    }
}

/// The figures of one stream, as exchanged at the end of a test.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamResult {
    pub id: u32,
    /// Bytes sent (a sending stream) or received (a receiving one).
    pub bytes: u64,
    /// Segments retransmitted (a sending TCP stream), else -1.
    pub retransmits: i64,
    /// UDP: jitter in seconds.
    pub jitter: f64,
    /// UDP: datagrams lost (receiver).
    pub errors: u64,
    /// UDP: datagrams sent, or highest packet number received.
    pub packets: u64,
    /// Seconds from the start of the test.
    pub start_time: f64,
    pub end_time: f64,
}

/// One side's results message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Results {
    /// CPU use of the process over the test, in percent (total, user,
    /// system).
    pub cpu_util_total: f64,
    pub cpu_util_user: f64,
    pub cpu_util_system: f64,
    /// 1 when the side's sending streams report retransmissions, 0 when
    /// they cannot, -1 when it sent nothing.
    pub sender_has_retransmits: i64,
    pub congestion_used: Option<String>,
    pub streams: Vec<StreamResult>,
    /// The server's own text, when the client asked for it.
    pub server_output_text: Option<String>,
}

impl Results {
    pub fn to_json(&self) -> String {
        let streams: Vec<Value> = self
            .streams
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "bytes": s.bytes,
                    "retransmits": s.retransmits,
                    "jitter": s.jitter,
                    "errors": s.errors,
                    "packets": s.packets,
                    "start_time": s.start_time,
                    "end_time": s.end_time,
                })
            })
            .collect();
        let mut o = Map::new();
        o.insert("cpu_util_total".into(), json!(self.cpu_util_total));
        o.insert("cpu_util_user".into(), json!(self.cpu_util_user));
        o.insert("cpu_util_system".into(), json!(self.cpu_util_system));
        o.insert(
            "sender_has_retransmits".into(),
            json!(self.sender_has_retransmits),
        );
        if let Some(c) = &self.congestion_used {
            o.insert("congestion_used".into(), json!(c));
        }
        o.insert("streams".into(), Value::Array(streams));
        if let Some(t) = &self.server_output_text {
            o.insert("server_output_text".into(), json!(t));
        }
        Value::Object(o).to_string()
    }

    /// Parses a results message; the fields iperf3 requires must be there.
    pub fn from_json(text: &[u8]) -> Result<Results, String> {
        let value: Value =
            serde_json::from_slice(text).map_err(|e| format!("results are not JSON: {e}"))?;
        let o = value.as_object().ok_or("results are not a JSON object")?;
        let num = |o: &Map<String, Value>, k: &str| -> Result<f64, String> {
            o.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("results lack the number {k}"))
        };
        let whole = |o: &Map<String, Value>, k: &str| -> Result<u64, String> {
            let v = num(o, k)?;
            if v < 0.0 {
                return Err(format!("results: {k} is negative"));
            }
            Ok(v as u64)
        };
        let streams = o
            .get("streams")
            .and_then(Value::as_array)
            .ok_or("results lack the streams array")?;
        if streams.len() > 2 * MAX_STREAMS as usize {
            return Err(format!("results list {} streams", streams.len()));
        }
        let streams = streams
            .iter()
            .map(|s| {
                let s = s.as_object().ok_or("a stream result is not an object")?;
                Ok(StreamResult {
                    id: u32::try_from(whole(s, "id")?).map_err(|_| "stream id too large")?,
                    bytes: whole(s, "bytes")?,
                    retransmits: num(s, "retransmits")? as i64,
                    jitter: num(s, "jitter")?,
                    errors: whole(s, "errors")?,
                    packets: whole(s, "packets")?,
                    start_time: num(s, "start_time").unwrap_or(0.0),
                    end_time: num(s, "end_time").unwrap_or(0.0),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Results {
            cpu_util_total: num(o, "cpu_util_total")?,
            cpu_util_user: num(o, "cpu_util_user")?,
            cpu_util_system: num(o, "cpu_util_system")?,
            sender_has_retransmits: num(o, "sender_has_retransmits")? as i64,
            congestion_used: o
                .get("congestion_used")
                .and_then(Value::as_str)
                .map(String::from),
            streams,
            server_output_text: o
                .get("server_output_text")
                .and_then(Value::as_str)
                .map(String::from),
        })
    }
}

/// Stream ids in the order streams are opened: 1, then 3, 4, 5, ... (iperf3
/// skips 2, and both sides must agree).
pub fn stream_id(index: usize) -> u32 {
    if index == 0 { 1 } else { index as u32 + 2 }
}

/// The length prefix of a JSON message, checked against [`MAX_JSON`].
pub fn json_length(prefix: [u8; 4]) -> Result<usize, String> {
    let n = u32::from_be_bytes(prefix) as usize;
    if n == 0 || n > MAX_JSON {
        return Err(format!("JSON message of {n} bytes (1 to {MAX_JSON})"));
    }
    Ok(n)
}

/// The start of a UDP data datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHeader {
    /// Sender's clock when it sent the datagram.
    pub sec: u32,
    pub usec: u32,
    /// Packet number, from 1.
    pub count: u64,
}

impl UdpHeader {
    /// Writes the header at the start of `buf` (at least
    /// 12 bytes, 16 with 64-bit counters). A 32-bit packet number wraps.
    pub fn write(&self, buf: &mut [u8], counters_64bit: bool) {
        buf[0..4].copy_from_slice(&self.sec.to_be_bytes());
        buf[4..8].copy_from_slice(&self.usec.to_be_bytes());
        if counters_64bit {
            buf[8..16].copy_from_slice(&self.count.to_be_bytes());
        } else {
            buf[8..12].copy_from_slice(&(self.count as u32).to_be_bytes());
        }
    }

    /// Reads the header, or `None` when the datagram is too short.
    pub fn read(buf: &[u8], counters_64bit: bool) -> Option<UdpHeader> {
        let word = |i: usize| -> Option<u32> {
            Some(u32::from_be_bytes(buf.get(i..i + 4)?.try_into().ok()?))
        };
        let count = if counters_64bit {
            u64::from_be_bytes(buf.get(8..16)?.try_into().ok()?)
        } else {
            u64::from(word(8)?)
        };
        Some(UdpHeader {
            sec: word(0)?,
            usec: word(4)?,
            count,
        })
    }

    /// Seconds since the Unix epoch the header carries.
    pub fn sent_secs(&self) -> f64 {
        f64::from(self.sec) + f64::from(self.usec) / 1e6
    }
}

/// A UDP receiver's accounting: highest packet number, losses,
/// reordering and jitter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UdpReceiveStats {
    /// Highest packet number seen.
    pub packet_count: u64,
    /// Datagrams missing (gaps in the numbers, less the late arrivals).
    pub lost: u64,
    /// Datagrams that arrived after a higher-numbered one.
    pub out_of_order: u64,
    /// RFC 3550 interarrival jitter, in seconds.
    pub jitter: f64,
    /// Datagrams received.
    pub received: u64,
    prev_transit: Option<f64>,
}

impl UdpReceiveStats {
    /// Accounts one datagram numbered `count` whose transit time (arrival
    /// clock minus the sender's clock in it, in seconds) was `transit`.
    pub fn on_datagram(&mut self, count: u64, transit: f64) {
        self.received += 1;
        if count > self.packet_count {
            // A gap in the numbers counts as losses until (if ever) the
            // missing datagrams come late.
            self.lost += count - self.packet_count - 1;
            self.packet_count = count;
        } else {
            self.out_of_order += 1;
            self.lost = self.lost.saturating_sub(1);
        }
        // RFC 3550, 6.4.1: "J(i) = J(i-1) + (|D(i-1,i)| - J(i-1))/16",
        // D being the difference of two packets' transit times (A.8).
        let prev = self.prev_transit.unwrap_or(transit);
        let d = (transit - prev).abs();
        self.prev_transit = Some(transit);
        self.jitter += (d - self.jitter) / 16.0;
    }
}

/// How long a sender holding `rate` bit/s must wait, `elapsed` after it
/// started and having sent `sent` bytes, before its next datagram or
/// block; `None` when it may send now (or has no rate).
pub fn pacing_delay(rate: u64, sent: u64, elapsed: Duration) -> Option<Duration> {
    if rate == 0 {
        return None;
    }
    let due = sent as f64 * 8.0 / rate as f64;
    let now = elapsed.as_secs_f64();
    (due > now).then(|| Duration::from_secs_f64(due - now))
}

/// A rate such as `100M` or `1.5G` in bit/s (K, M, G: powers of 1000,
/// as iperf3's `-b`).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('G') => (&t[..t.len() - 1], 1e9),
        Some('T') => (&t[..t.len() - 1], 1e12),
        _ => (t, 1.0),
    };
    let v: f64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a rate (e.g. 100M, 1.5G, 64K)"))?;
    if !v.is_finite() || v < 0.0 || v * mult > 1e15 {
        return Err(format!("'{s}' is out of range"));
    }
    Ok((v * mult) as u64)
}

/// A block length such as `1460`, `64K` or `1M` (powers of 1024, as
/// iperf3's `-l`).
pub fn parse_len(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        _ => (t, 0),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a length (e.g. 1460, 128K)"))?;
    let v = n.checked_shl(shift).unwrap_or(usize::MAX);
    if v == 0 || v > MAX_BLKSIZE {
        return Err(format!("length {s} (1 to {MAX_BLKSIZE} bytes)"));
    }
    Ok(v)
}

/// Process CPU time (user, system) so far.
pub fn cpu_times() -> (Duration, Duration) {
    // SAFETY: getrusage writes the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return (Duration::ZERO, Duration::ZERO);
        }
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// CPU use between two [`cpu_times`] readings over `wall`, in percent:
/// (total, user, system).
pub fn cpu_util(
    start: (Duration, Duration),
    end: (Duration, Duration),
    wall: Duration,
) -> (f64, f64, f64) {
    let w = wall.as_secs_f64();
    if w <= 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let user = end.0.saturating_sub(start.0).as_secs_f64() / w * 100.0;
    let sys = end.1.saturating_sub(start.1).as_secs_f64() / w * 100.0;
    (user + sys, user, sys)
}

/// A new test cookie: 36 characters of iperf3's alphabet and a NUL.
pub fn make_cookie() -> [u8; COOKIE_SIZE] {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut random = [0u8; COOKIE_SIZE - 1];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .is_ok();
    if !filled {
        // No /dev/urandom: the clock and the hasher's random keys.
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        for (i, b) in random.iter_mut().enumerate() {
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            *b = h.finish() as u8;
        }
    }
    let mut cookie = [0u8; COOKIE_SIZE];
    for (c, r) in cookie.iter_mut().zip(random) {
        *c = ALPHABET[usize::from(r) % ALPHABET.len()];
    }
    cookie
}

/// Human figures, iperf3 style: `1.10 GBytes`, `941 Mbits/sec`.
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    let (v, unit) = if n >= (1u64 << 30) as f64 {
        (n / (1u64 << 30) as f64, "GBytes")
    } else if n >= (1u64 << 20) as f64 {
        (n / (1u64 << 20) as f64, "MBytes")
    } else if n >= 1024.0 {
        (n / 1024.0, "KBytes")
    } else {
        (n, "Bytes")
    };
    format!("{} {unit}", three_digits(v))
}

pub fn human_rate(bits_per_sec: f64) -> String {
    let (v, unit) = if bits_per_sec >= 1e9 {
        (bits_per_sec / 1e9, "Gbits/sec")
    } else if bits_per_sec >= 1e6 {
        (bits_per_sec / 1e6, "Mbits/sec")
    } else if bits_per_sec >= 1e3 {
        (bits_per_sec / 1e3, "Kbits/sec")
    } else {
        (bits_per_sec, "bits/sec")
    };
    format!("{} {unit}", three_digits(v))
}

fn three_digits(v: f64) -> String {
    if v < 9.995 {
        format!("{v:.2}")
    } else if v < 99.95 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests;
