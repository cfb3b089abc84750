//! SYN cookies (RFC 4987 section 3.6): when a listener's SYN queue is full,
//! the SYN-ACK's sequence number encodes what the connection needs, so the
//! listener keeps no state until the handshake's final ACK returns it.
//!
//! The cookie (the ISS of the SYN-ACK) is built as Linux builds its own:
//!
//! ```text
//! cookie = H1(tuple) + ISN(peer) + (count << 24)
//!        + ((H2(tuple, ISN(peer), count) + mss_index) mod 2^24)
//! ```
//!
//! where `count` is a counter of [`PERIOD`]s since the stack started, H1 and
//! H2 are SipHash-2-4 keyed with the stack's secret, and `mss_index` picks
//! the peer's MSS from a table of eight. (Unlike Linux, H2 covers the
//! peer's ISN too, so an ACK whose sequence number is off by a little does
//! not validate with a neighbouring MSS.) The final ACK acknowledges
//! cookie + 1; the stack undoes the sum, accepts the counter only if it is
//! at most [`MAX_AGE`] periods old, and the MSS index only if the keyed
//! hash of that counter gives it. Guessing a valid cookie blindly succeeds
//! about once in 2^32 / (3 * 8), and each guess must also carry the peer's
//! ISN, which the attacker must know for the four-tuple.
//!
//! "Use of SYN cookies [...] sacrifices TCP options" (RFC 4987 3.6): the
//! window scale and SACK-permitted options of the SYN are kept only when
//! the peer uses timestamps, in the low six bits of our timestamp value,
//! which the final ACK echoes back (as Linux does); without timestamps the
//! SYN-ACK carries only the MSS option, so neither side uses the others.

use std::hash::Hasher;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use siphasher::sip::SipHasher24;

use crate::config::TcpConfig;
use crate::segment::{Flags, TcpOptions, TcpRepr};
use crate::seq::SeqNum;

/// Granularity of the cookie's time counter.
pub const PERIOD: Duration = Duration::from_secs(64);
/// A cookie made this many periods ago (or fewer) is still valid: between
/// two and three periods (128 to 192 s), like Linux's two minutes.
pub const MAX_AGE: u32 = 2;

/// MSS values a cookie can carry (3 bits). Common path MSSs: the RFC 9293
/// default, tunnels and PPPoE, Ethernet, and jumbo frames.
const MSS_TABLE: [u16; 8] = [536, 1220, 1300, 1360, 1400, 1440, 1460, 8960];

/// Timestamp-value bits that carry the SYN's options.
const TS_OPT_BITS: u32 = 6;
const TS_OPT_MASK: u32 = (1 << TS_OPT_BITS) - 1;
const TS_NO_WSCALE: u32 = 0xf;
const TS_SACK: u32 = 0x10;
/// Always set in a cookie timestamp: one more bit a forged echo must get
/// right.
const TS_MARK: u32 = 0x20;

/// What a valid cookie restores of the peer's SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieSyn {
    /// The peer's MSS (rounded down to the table).
    pub mss: u16,
    /// The peer's window scale shift, if window scaling is in use.
    pub window_scale: Option<u8>,
    /// SACK permitted.
    pub sack: bool,
    /// Timestamps in use (the final ACK carried them).
    pub timestamps: bool,
}

/// Makes and checks SYN cookies for one stack.
#[derive(Clone, Debug)]
pub struct SynCookies {
    key: (u64, u64),
    epoch: Instant,
}

impl SynCookies {
    /// Cookies keyed with a 128-bit secret (random per stack), with the
    /// time counter starting at `epoch`.
    pub fn new(key: (u64, u64), epoch: Instant) -> Self {
        SynCookies { key, epoch }
    }

    fn count(&self, now: Instant) -> u32 {
        (now.saturating_duration_since(self.epoch).as_secs() / PERIOD.as_secs()) as u32
    }

    fn hash(
        &self,
        which: u64,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        isn: SeqNum,
        count: u32,
    ) -> u32 {
        let mut h = SipHasher24::new_with_keys(self.key.0 ^ which, self.key.1);
        h.write(&local.ip().octets());
        h.write_u16(local.port());
        h.write(&remote.ip().octets());
        h.write_u16(remote.port());
        h.write_u32(isn.0);
        h.write_u32(count);
        h.finish() as u32
    }

    /// The cookie for a SYN from `remote` with sequence number `peer_isn`
    /// and MSS option `peer_mss` (536 when absent, RFC 9293 3.7.1).
    pub fn make(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNum,
        peer_mss: u16,
    ) -> SeqNum {
        let index = MSS_TABLE.iter().rposition(|&m| m <= peer_mss).unwrap_or(0) as u32;
        let count = self.count(now);
        let h1 = self.hash(1, local, remote, SeqNum(0), 0);
        let h2 = self.hash(2, local, remote, peer_isn, count);
        SeqNum(
            h1.wrapping_add(peer_isn.0)
                .wrapping_add(count << 24)
                .wrapping_add(h2.wrapping_add(index) & 0x00ff_ffff),
        )
    }

    /// Checks the cookie an ACK returns (`cookie` = SEG.ACK - 1, `peer_isn`
    /// = SEG.SEQ - 1). Returns the MSS it carries if it is genuine and
    /// recent.
    pub fn check(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNum,
        cookie: SeqNum,
    ) -> Option<u16> {
        let h1 = self.hash(1, local, remote, SeqNum(0), 0);
        let rest = cookie.0.wrapping_sub(h1).wrapping_sub(peer_isn.0);
        let count_now = self.count(now);
        // The top 8 bits are the counter (mod 256) when it was made.
        let age = (count_now as u8).wrapping_sub((rest >> 24) as u8) as u32;
        if age > MAX_AGE || age > count_now {
            return None;
        }
        let count = count_now - age;
        let h2 = self.hash(2, local, remote, peer_isn, count);
        let index = (rest.wrapping_sub(h2) & 0x00ff_ffff) as usize;
        MSS_TABLE.get(index).copied()
    }
}

/// Our timestamp value for a cookie SYN-ACK: `ts_now` with the low six bits
/// replaced by the SYN's window scale and SACK-permitted options, never
/// above `ts_now` (the clock must not appear to run backwards later).
pub fn encode_timestamp(ts_now: u32, window_scale: Option<u8>, sack: bool) -> u32 {
    let mut opts = TS_MARK | window_scale.map_or(TS_NO_WSCALE, |w| u32::from(w.min(14)));
    if sack {
        opts |= TS_SACK;
    }
    let mut ts = (ts_now & !TS_OPT_MASK) | opts;
    if (ts.wrapping_sub(ts_now) as i32) > 0 {
        ts = ts.wrapping_sub(1 << TS_OPT_BITS);
    }
    ts
}

/// The SYN options carried by the timestamp an ACK echoes (`tsecr`), if
/// the echo is plausible: not from the future and no older than a valid
/// cookie can be.
pub fn decode_timestamp(tsecr: u32, ts_now: u32) -> Option<(Option<u8>, bool)> {
    let age_ms = ts_now.wrapping_sub(tsecr) as i32;
    let max_ms = ((MAX_AGE + 1) as u64 * PERIOD.as_millis() as u64) as i32;
    if !(0..=max_ms).contains(&age_ms) {
        return None;
    }
    let opts = tsecr & TS_OPT_MASK;
    if opts & TS_MARK == 0 {
        return None;
    }
    let wscale = match opts & 0xf {
        TS_NO_WSCALE => None,
        w if w <= 14 => Some(w as u8),
        _ => return None,
    };
    Some((wscale, opts & TS_SACK != 0))
}

/// The window a cookie SYN-ACK offers (unscaled, RFC 7323 2.2): the
/// configured receive buffer, at most 65,535. The connection made from the
/// cookie starts with the same edge.
pub fn cookie_window(cfg: &TcpConfig) -> u16 {
    cfg.recv_buffer.min(65_535) as u16
}

/// The SYN-ACK answering `syn` with cookie `iss`. `ts_now` is our
/// timestamp clock for this address pair. Options are those of the SYN
/// that a cookie can restore: the MSS always; window scale and SACK only
/// beside timestamps (RFC 7323: an option appears in a SYN-ACK only if the
/// SYN carried it).
pub fn cookie_syn_ack(cfg: &TcpConfig, syn: &TcpRepr, iss: SeqNum, ts_now: u32) -> TcpRepr {
    let mut options = TcpOptions {
        mss: Some(cfg.mss),
        ..TcpOptions::default()
    };
    if let (true, Some((val, _))) = (cfg.timestamps, syn.options.timestamps) {
        let wscale = (cfg.window_scale > 0)
            .then_some(syn.options.window_scale)
            .flatten();
        let sack = cfg.sack && syn.options.sack_permitted;
        if wscale.is_some() {
            options.window_scale = Some(cfg.window_scale.min(14));
        }
        options.sack_permitted = sack;
        options.timestamps = Some((encode_timestamp(ts_now, wscale, sack), val));
    }
    TcpRepr {
        src_port: syn.dst_port,
        dst_port: syn.src_port,
        seq: iss,
        ack: syn.seq + 1,
        flags: Flags(Flags::SYN | Flags::ACK),
        window: cookie_window(cfg),
        options,
        urgent: 0,
    }
}

/// Validates the final ACK of a cookie handshake: an ACK without SYN, RST
/// or FIN whose acknowledgment returns a genuine, recent cookie and, when
/// it carries timestamps, a plausible echo of ours. Returns what to build
/// the connection with.
pub fn check_ack(
    cookies: &SynCookies,
    now: Instant,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    ack: &TcpRepr,
    ts_now: u32,
) -> Option<CookieSyn> {
    if !ack.flags.ack() || ack.flags.syn() || ack.flags.rst() {
        return None;
    }
    let mss = cookies.check(now, local, remote, ack.seq - 1, ack.ack - 1)?;
    let (window_scale, sack, timestamps) = match ack.options.timestamps {
        Some((_, ecr)) if ecr != 0 => {
            let (w, s) = decode_timestamp(ecr, ts_now)?;
            (w, s, true)
        }
        _ => (None, false, false),
    };
    Some(CookieSyn {
        mss,
        window_scale,
        sack,
        timestamps,
    })
}

#[cfg(test)]
mod tests;
