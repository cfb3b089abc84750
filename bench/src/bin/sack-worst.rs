//! SACK processing cost under a malicious receiver (the CVE-2019-11477 /
//! 11478 class): a receiver that SACKs every other byte of a large flight
//! fills the sender's scoreboard with one-byte ranges, trying to make every
//! ACK expensive and every retransmission tiny. Prints the worst and mean
//! time per ACK of:
//!
//! * `connection, 1-byte SACKs`: a `tcp::Connection` with about
//!   `--segments` segments in flight, fed ACKs that each carry 4 one-byte
//!   SACK blocks (the pattern is described at [`attack`]); the time covers
//!   `handle_segment` plus the `poll_transmit` answering it. The
//!   retransmissions are counted, with their mean size.
//! * `connection, normal recovery`: the same flight with every 30th segment
//!   lost and an honest receiver.
//! * `scoreboard, 1-byte ranges + log`: the `tcp::sack::Scoreboard` alone,
//!   with 1,024 one-byte ranges and a 4,096-entry retransmission log all
//!   found lost (the old implementation's worst case), then ACKs of 4
//!   one-byte blocks; per ACK the calls a connection makes.
//! * `scoreboard, normal recovery`: the scoreboard alone, every 30th
//!   segment of the flight lost.
//!
//! Each scenario runs `--rounds` times; an ACK's time is its fastest round,
//! so that preemption does not pass for work.
//!
//! usage: sack-worst [--acks N] [--segments N] [--rounds N]

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use tcp::sack::Scoreboard;
use tcp::{Connection, Flags, MAX_SACK_BLOCKS, SeqNum, TcpConfig, TcpOptions, TcpRepr};

const USAGE: &str = "sack-worst [--acks N] [--segments N] [--rounds N]";
/// The sender MSS in the scoreboard scenarios.
const MSS: usize = 1448;
const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
const REMOTE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);

/// Per-ACK times over several rounds of one scenario.
#[derive(Default)]
struct Timings {
    /// Fastest time of each ACK over the rounds.
    best: Vec<Duration>,
}

impl Timings {
    fn record(&mut self, ack: usize, d: Duration) {
        if ack < self.best.len() {
            self.best[ack] = self.best[ack].min(d);
        } else {
            self.best.push(d);
        }
    }

    fn report(&self, what: &str, extra: &str) {
        let worst = self.best.iter().max().copied().unwrap_or_default();
        let total: Duration = self.best.iter().sum();
        let mean = total.as_nanos() as f64 / self.best.len().max(1) as f64;
        println!(
            "{what:<34} {:>5} ACKs  worst {:>10.0} ns/ACK  mean {:>9.0} ns/ACK  {extra}",
            self.best.len(),
            worst.as_nanos() as f64,
            mean
        );
    }
}

fn main() {
    let flags = bench::Flags::from_env(USAGE);
    let acks: usize = flags.get("acks", 2000);
    let segments: usize = flags.get("segments", 1000);
    let rounds: usize = flags.get("rounds", 5);
    let mut t = Timings::default();
    let mut info = String::new();
    for _ in 0..rounds {
        info = attack(acks, segments, &mut t);
    }
    t.report("connection, 1-byte SACKs:", &info);
    let mut t = Timings::default();
    for _ in 0..rounds {
        info = honest(segments, &mut t);
    }
    t.report("connection, normal recovery:", &info);
    let mut t = Timings::default();
    for _ in 0..rounds {
        info = scoreboard_worst(acks, segments, &mut t);
    }
    t.report("scoreboard, 1-byte ranges + log:", &info);
    let mut t = Timings::default();
    for _ in 0..rounds {
        info = scoreboard_normal(segments, &mut t);
    }
    t.report("scoreboard, normal recovery:", &info);
}

/// A segment from the (hand-played) peer.
fn from_peer(seq: SeqNum, ack: SeqNum, flags: u8, options: TcpOptions) -> TcpRepr {
    TcpRepr {
        src_port: REMOTE.port(),
        dst_port: LOCAL.port(),
        seq,
        ack,
        flags: Flags(flags),
        window: 65_535,
        options,
        urgent: 0,
    }
}

/// Transmits; `sent` gets (seq, len) of each data segment.
fn poll(c: &mut Connection, now: Instant, sent: &mut Vec<(SeqNum, usize)>) {
    sent.clear();
    c.poll_transmit(now, 1500, |r, a, b| {
        let len = a.len() + b.len();
        if len > 0 {
            sent.push((r.seq, len));
        }
        true
    });
}

/// A sender with a flight of at least `segments` full segments.
struct Sender {
    c: Connection,
    now: Instant,
    /// The peer's sequence number (it sends no data).
    rcv: SeqNum,
    una: SeqNum,
    /// The segments in flight, in order.
    flight: Vec<(SeqNum, usize)>,
}

impl Sender {
    /// Opens a connection (no timestamps, so ACKs carry 4 SACK blocks) and
    /// grows the flight in slow start, the peer acknowledging every second
    /// segment one 10 ms RTT after it was sent.
    fn new(segments: usize) -> Sender {
        let cfg = TcpConfig {
            send_buffer: 4 * segments * 1460 + (1 << 20),
            ..TcpConfig::default()
        };
        let t0 = Instant::now();
        let mut now = t0;
        let iss = SeqNum(u32::MAX - 1_000_000);
        let peer_iss = SeqNum(7);
        let mut c = Connection::connect(&cfg, LOCAL, REMOTE, iss, 0, t0, now);
        let mut sent = Vec::new();
        poll(&mut c, now, &mut sent);
        let opts = TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            ..TcpOptions::default()
        };
        now += Duration::from_millis(10);
        let synack = from_peer(peer_iss, iss + 1, Flags::SYN | Flags::ACK, opts);
        c.handle_segment(now, &synack, &[]);
        assert!(c.is_established(), "handshake");
        let rcv = peer_iss + 1;
        let data = vec![0x5a_u8; 1 << 16];
        let mut una = iss + 1;
        for _ in 0..64 {
            while c.send(&data).is_ok_and(|n| n > 0) {}
            poll(&mut c, now, &mut sent);
            if sent.len() >= segments {
                break;
            }
            now += Duration::from_millis(10);
            let ends: Vec<SeqNum> = sent.iter().map(|&(s, l)| s + l).collect();
            for &end in ends.iter().skip(1).step_by(2).chain(ends.last()) {
                c.handle_segment(
                    now,
                    &from_peer(rcv, end, Flags::ACK, TcpOptions::default()),
                    &[],
                );
                una = end;
            }
        }
        assert_eq!(
            sent.first().map(|s| s.0),
            Some(una),
            "all but the flight acknowledged"
        );
        Sender {
            c,
            now,
            rcv,
            una,
            flight: sent,
        }
    }

    fn snd_max(&self) -> SeqNum {
        self.flight.last().map_or(self.una, |&(s, l)| s + l)
    }

    /// Handles one ACK and transmits, timed; returns the retransmissions
    /// (data below the highest sequence number sent so far).
    fn ack(
        &mut self,
        ack: SeqNum,
        options: TcpOptions,
        sent: &mut Vec<(SeqNum, usize)>,
    ) -> Duration {
        let seg = from_peer(self.rcv, ack, Flags::ACK, options);
        self.now += Duration::from_micros(10);
        let start = Instant::now();
        self.c.handle_segment(self.now, &seg, &[]);
        poll(&mut self.c, self.now, sent);
        start.elapsed()
    }
}

/// The attack: the cumulative ACK stays put and every ACK carries four
/// one-byte SACK blocks on odd offsets. The first 255 ACKs SACK bytes
/// upwards from the bottom of the flight (1,020 ranges); the 256th SACKs
/// three single bytes at its top, which makes the whole flight lost and the
/// pipe nearly empty, so that PRR lets the sender retransmit on every ACK.
/// From then on each ACK fills two holes behind the highest retransmission
/// (merging ranges, so the scoreboard stays full) and SACKs two bytes just
/// ahead of it (so that a sender which cuts retransmissions at SACK edges
/// sends one byte at a time).
fn attack(acks: usize, segments: usize, times: &mut Timings) -> String {
    let mut s = Sender::new(segments);
    let (una, mut snd_max) = (s.una, s.snd_max());
    let flight = s.flight.len();
    let odd = |x: SeqNum| if x.since(una) % 2 == 1 { x } else { x + 1 };
    let (mut ahead, mut behind, mut front) = (una + 1, una, una);
    let (mut rtx, mut rtx_bytes, mut rtx_tiny) = (0u64, 0u64, 0u64);
    let before = s.c.stats();
    let mut sent = Vec::new();
    for i in 0..acks {
        let mut options = TcpOptions::default();
        if i == 255 {
            for k in 0..3 {
                let x = snd_max - (1 + 2 * k);
                options.push_sack(x, x + 1);
            }
        } else if i > 255 {
            for _ in 0..2 {
                options.push_sack(behind, behind + 1);
                behind += 2;
            }
        }
        ahead = ahead.max(odd(front + 1));
        while usize::from(options.sack_count) < MAX_SACK_BLOCKS {
            options.push_sack(ahead, ahead + 1);
            ahead += 2;
        }
        times.record(i, s.ack(una, options, &mut sent));
        for &(seq, len) in &sent {
            if seq < snd_max {
                rtx += 1;
                rtx_bytes += len as u64;
                rtx_tiny += u64::from(len < 64);
                front = front.max(seq + len);
            }
            snd_max = snd_max.max(seq + len);
        }
    }
    let st = s.c.stats();
    black_box(&st);
    format!(
        "(flight {flight} segments; {rtx} retransmissions, mean {} B, {rtx_tiny} under 64 B; \
         {} RTOs)",
        rtx_bytes.checked_div(rtx).unwrap_or(0),
        st.rto_count - before.rto_count,
    )
}

/// Every 30th segment of the flight lost; the receiver SACKs the others as
/// they arrive (the block holding the new segment first, then the ones
/// below it), then the retransmissions arrive one by one.
fn honest(segments: usize, times: &mut Timings) -> String {
    let mut s = Sender::new(segments);
    let flight = s.flight.clone();
    let lost = |i: usize| i % 30 == 5;
    let end = |i: usize| flight[i].0 + flight[i].1;
    let mut sent = Vec::new();
    let mut ack = s.una;
    let mut n = 0;
    let mut rtx = 0;
    for i in (0..flight.len()).filter(|&i| !lost(i)) {
        let mut options = TcpOptions::default();
        if i < 5 {
            ack = end(i);
        } else {
            // Blocks: the run of delivered segments holding i, then the runs
            // below it, down to the cumulative ACK.
            let mut hi = i;
            while usize::from(options.sack_count) < MAX_SACK_BLOCKS && flight[hi].0 > ack {
                let mut lo = hi;
                while lo > 0 && !lost(lo - 1) {
                    lo -= 1;
                }
                options.push_sack(flight[lo].0, end(hi));
                if lo < 2 {
                    break;
                }
                hi = lo - 2;
            }
        }
        times.record(n, s.ack(ack, options, &mut sent));
        n += 1;
        rtx += sent.iter().filter(|x| x.0 < end(flight.len() - 1)).count();
    }
    // The retransmissions arrive: each moves the cumulative ACK to the next
    // hole.
    let holes: Vec<usize> = (0..flight.len()).filter(|&i| lost(i)).collect();
    for (k, _) in holes.iter().enumerate() {
        ack = holes
            .get(k + 1)
            .map_or(end(flight.len() - 1), |&i| flight[i].0);
        times.record(n, s.ack(ack, TcpOptions::default(), &mut sent));
        n += 1;
    }
    let st = s.c.stats();
    black_box(&st);
    format!(
        "(flight {} segments, {} lost; {rtx} retransmissions, {} fast recoveries, {} RTOs)",
        flight.len(),
        holes.len(),
        st.fast_recoveries,
        st.rto_count
    )
}

/// The calls a connection makes for one ACK (input.rs process_ack and
/// detect_loss, PRR) and for the transmit decision after it (output.rs
/// plan).
fn ack_calls(
    sb: &mut Scoreboard,
    una: SeqNum,
    snd_max: SeqNum,
    blocks: &[(SeqNum, SeqNum)],
) -> usize {
    let mut x = sb.sacked_bytes();
    x += sb.add_blocks(una, snd_max, blocks);
    sb.update_lost(MSS);
    x += sb.detect_lost_retransmissions(una);
    x += usize::from(sb.is_lost(una));
    x += sb.sacked_bytes();
    x += sb.pipe(una, snd_max);
    // plan(): the pipe again, then NextSeg.
    x += sb.pipe(una, snd_max);
    x += sb.peek_again(una, MSS).map_or(0, |r| r.1);
    x += sb.next_lost(una, MSS).map_or(0, |r| r.1);
    x += sb.peek_rescue(una, snd_max, MSS).map_or(0, |r| r.1);
    x
}

/// 1,024 one-byte ranges and a 4,096-entry retransmission log all found
/// lost, then ACKs that keep the scoreboard full: two blocks fill holes at
/// the bottom (each merging ranges), two add one-byte ranges further up.
fn scoreboard_worst(acks: usize, segments: usize, times: &mut Timings) -> String {
    let una = SeqNum(u32::MAX - 100_000);
    let snd_max0 = una + segments * MSS;
    let mut sb = Scoreboard::new(una);
    // 1,023 one-byte ranges on the odd bytes of the first 2,046, and one
    // at the top.
    for k in 0..1023 {
        let b = una + (1 + 2 * k);
        sb.add_blocks(una, snd_max0, &[(b, b + 1)]);
    }
    sb.add_blocks(una, snd_max0, &[(snd_max0 - 1, snd_max0)]);
    sb.update_lost(MSS);
    sb.start_episode(una);
    // 4,096 retransmissions (the one-byte holes, four times over), all sent
    // while SND.NXT was `snd_max0`...
    for k in 0..4096 {
        sb.on_retransmit(una + 2 * (k % 1023), 1, snd_max0);
    }
    // ...then new data beyond them is SACKed: all are lost.
    let mut snd_max = snd_max0 + MSS;
    let start = Instant::now();
    sb.add_blocks(una, snd_max, &[(snd_max0 - 1, snd_max0 + 1)]);
    let found = sb.detect_lost_retransmissions(una);
    let setup = start.elapsed();
    let mut hole = una;
    let mut fresh = una + 4097;
    let mut sink = 0;
    for i in 0..acks {
        let blocks = [
            (hole, hole + 1),
            (hole + 2, hole + 3),
            (fresh, fresh + 1),
            (fresh + 2, fresh + 3),
        ];
        hole += 4;
        fresh += 4;
        snd_max += 1;
        let start = Instant::now();
        sink += ack_calls(&mut sb, una, snd_max, &blocks);
        times.record(i, start.elapsed());
    }
    black_box(sink);
    format!(
        "(1024 ranges, 4096 retransmissions; finding {found} lost took {} us)",
        setup.as_micros()
    )
}

/// Ordinary recovery: every 30th segment of the flight lost, one ACK per
/// delivered segment with up to 3 blocks, a retransmission per ACK while
/// any is due, then the cumulative ACK catching up.
fn scoreboard_normal(segments: usize, times: &mut Timings) -> String {
    let una0 = SeqNum(u32::MAX - 100_000);
    let snd_max = una0 + segments * MSS;
    let seg = |i: usize| una0 + i * MSS;
    let lost = |i: usize| i % 30 == 5;
    let mut sb = Scoreboard::new(una0);
    let mut una = una0;
    let mut sink = 0;
    let mut in_recovery = false;
    let mut retransmitted = Vec::new();
    let mut n = 0;
    for i in (0..segments).filter(|&i| !lost(i)) {
        // The block holding segment i first, then the two below it.
        let mut blocks = Vec::new();
        let mut hi = i + 1;
        while blocks.len() < 3 && hi > 0 {
            let mut lo = hi - 1;
            while lo > 0 && !lost(lo - 1) {
                lo -= 1;
            }
            blocks.push((seg(lo), seg(hi)));
            hi = lo.saturating_sub(1);
        }
        let start = Instant::now();
        if i < 5 {
            una = seg(i + 1);
            sb.on_cumulative_ack(una);
        } else {
            sink += ack_calls(&mut sb, una, snd_max, &blocks);
            if !in_recovery && sb.is_lost(una) {
                in_recovery = true;
                sb.start_episode(una);
            }
            if in_recovery && let Some((s, l)) = sb.next_lost(una, MSS) {
                sb.on_retransmit(s, l, snd_max);
                retransmitted.push(s);
            }
        }
        times.record(n, start.elapsed());
        n += 1;
    }
    for (k, _) in retransmitted.iter().enumerate() {
        let next = retransmitted.get(k + 1).copied().unwrap_or(snd_max);
        let start = Instant::now();
        una = next;
        sb.on_cumulative_ack(una);
        sink += ack_calls(&mut sb, una, snd_max, &[]);
        times.record(n, start.elapsed());
        n += 1;
    }
    black_box(sink);
    format!(
        "({segments} segments, {} lost, {} retransmitted)",
        (0..segments).filter(|&i| lost(i)).count(),
        retransmitted.len()
    )
}
