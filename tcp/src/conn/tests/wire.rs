//! Two connections wired back to back (no IP), under a virtual clock.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::*;

pub(super) const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
pub(super) const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);

pub(super) type Seg = (TcpRepr, Vec<u8>);

/// What the wire does with a segment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Deliver,
    Drop,
}

/// Decides each segment's fate from its index, header and payload.
pub(super) type Filter = Box<dyn FnMut(usize, &TcpRepr, &[u8]) -> Fate>;

pub(super) struct Wire {
    pub(super) a: Connection,
    pub(super) b: Option<Connection>,
    pub(super) now: Instant,
    /// Segments in flight, delivered after `delay`.
    pub(super) a2b: VecDeque<(Instant, Seg)>,
    pub(super) b2a: VecDeque<(Instant, Seg)>,
    pub(super) delay: Duration,
    /// Decides the fate of each segment from A (index counts A's segments).
    pub(super) filter_a: Filter,
    pub(super) filter_b: Filter,
    pub(super) sent_a: Vec<Seg>,
    /// When each of `sent_a` left.
    pub(super) times_a: Vec<Instant>,
    pub(super) sent_b: Vec<Seg>,
    /// B's configuration (used when A's SYN arrives).
    pub(super) cfg_b: TcpConfig,
    /// B's application drains what it receives into this.
    pub(super) b_rx: Vec<u8>,
    pub(super) b_reads: bool,
    /// B's initial sequence number.
    pub(super) iss_b: SeqNum,
    /// B answers SYNs with SYN cookies (no state until the final ACK).
    pub(super) cookies_b: Option<crate::syncookie::SynCookies>,
    pub(super) epoch_b: Instant,
}

/// B's timestamp offset in cookie mode.
pub(super) const COOKIE_TS_OFFSET: u32 = 0x8000_0000;

pub(super) fn cfg() -> TcpConfig {
    TcpConfig {
        send_buffer: 64 * 1024,
        recv_buffer: 64 * 1024,
        ..TcpConfig::default()
    }
}

impl Wire {
    pub(super) fn new(cfg_a: TcpConfig, cfg_b: TcpConfig) -> Wire {
        Wire::with_iss(cfg_a, cfg_b, SeqNum(1000), SeqNum(5000))
    }

    pub(super) fn with_iss(
        cfg_a: TcpConfig,
        cfg_b: TcpConfig,
        iss_a: SeqNum,
        iss_b: SeqNum,
    ) -> Wire {
        let now = Instant::now();
        Wire {
            a: Connection::connect(&cfg_a, A, B, iss_a, 7, now, now),
            b: None,
            now,
            a2b: VecDeque::new(),
            b2a: VecDeque::new(),
            delay: Duration::from_millis(5),
            filter_a: Box::new(|_, _, _| Fate::Deliver),
            filter_b: Box::new(|_, _, _| Fate::Deliver),
            sent_a: Vec::new(),
            times_a: Vec::new(),
            sent_b: Vec::new(),
            cfg_b,
            b_rx: Vec::new(),
            b_reads: true,
            iss_b,
            cookies_b: None,
            epoch_b: now,
        }
    }

    /// B's timestamp clock in cookie mode (epoch `epoch_b`, fixed offset).
    pub(super) fn b_ts_now(&self, now: Instant) -> u32 {
        let ms = now.saturating_duration_since(self.epoch_b).as_millis() as u32;
        ms.wrapping_add(COOKIE_TS_OFFSET)
    }

    pub(super) fn b(&mut self) -> &mut Connection {
        self.b.as_mut().expect("B exists once A's SYN arrived")
    }

    pub(super) fn flush_a(&mut self) {
        let now = self.now;
        let mut out = Vec::new();
        self.a.poll_transmit(now, 1500, |r, x, y| {
            out.push((*r, [x, y].concat()));
            true
        });
        for (r, p) in out {
            let idx = self.sent_a.len();
            self.sent_a.push((r, p.clone()));
            self.times_a.push(now);
            if (self.filter_a)(idx, &r, &p) == Fate::Deliver {
                self.a2b.push_back((now + self.delay, (r, p)));
            }
        }
    }

    pub(super) fn flush_b(&mut self) {
        let now = self.now;
        let mut out = Vec::new();
        if let Some(b) = self.b.as_mut() {
            b.poll_transmit(now, 1500, |r, x, y| {
                out.push((*r, [x, y].concat()));
                true
            });
        }
        for (r, p) in out {
            let idx = self.sent_b.len();
            self.sent_b.push((r, p.clone()));
            if (self.filter_b)(idx, &r, &p) == Fate::Deliver {
                self.b2a.push_back((now + self.delay, (r, p)));
            }
        }
    }

    /// One round: both sides transmit; due segments are delivered one at a
    /// time, each receiver answering at once (as the stack does).
    pub(super) fn round(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        self.flush_a();
        self.flush_b();
        while self.a2b.front().is_some_and(|(t, _)| *t <= now) {
            let (_, (r, p)) = self.a2b.pop_front().expect("checked");
            moved = true;
            match self.b.as_mut() {
                Some(b) => {
                    b.handle_segment(now, &r, &p);
                }
                None if r.flags.syn() && !r.flags.ack() && self.cookies_b.is_some() => {
                    // Stateless: the SYN-ACK carries a cookie.
                    let cookies = self.cookies_b.as_ref().expect("checked");
                    let mss = r.options.mss.unwrap_or(536);
                    let iss = cookies.make(now, B, A, r.seq, mss);
                    let ts_now = self.b_ts_now(now);
                    let synack = crate::syncookie::cookie_syn_ack(&self.cfg_b, &r, iss, ts_now);
                    self.sent_b.push((synack, Vec::new()));
                    self.b2a.push_back((now + self.delay, (synack, Vec::new())));
                }
                None if r.flags.ack() && self.cookies_b.is_some() => {
                    let cookies = self.cookies_b.as_ref().expect("checked");
                    let ts_now = self.b_ts_now(now);
                    if let Some(syn) = crate::syncookie::check_ack(cookies, now, B, A, &r, ts_now) {
                        let mut b = Connection::accept_cookie(
                            &self.cfg_b,
                            B,
                            A,
                            COOKIE_TS_OFFSET,
                            self.epoch_b,
                            now,
                            &r,
                            syn,
                        );
                        b.handle_segment(now, &r, &p);
                        self.b = Some(b);
                    }
                }
                None if r.flags.syn() && !r.flags.ack() => {
                    self.b = Some(Connection::accept(
                        &self.cfg_b,
                        B,
                        A,
                        self.iss_b,
                        11,
                        now,
                        now,
                        &r,
                    ));
                }
                None => {}
            }
            self.flush_b();
        }
        while self.b2a.front().is_some_and(|(t, _)| *t <= now) {
            let (_, (r, p)) = self.b2a.pop_front().expect("checked");
            moved = true;
            self.a.handle_segment(now, &r, &p);
            self.flush_a();
        }
        if self.b_reads
            && let Some(b) = self.b.as_mut()
        {
            let mut buf = [0u8; 65536];
            while let Ok(n) = b.recv(&mut buf) {
                if n == 0 {
                    break;
                }
                self.b_rx.extend_from_slice(&buf[..n]);
            }
        }
        moved
    }

    /// Runs until `until` (virtual), jumping from event to event.
    pub(super) fn run(&mut self, dur: Duration) {
        let until = self.now + dur;
        for _ in 0..1_000_000 {
            while self.round() {}
            let mut next = [self.a.poll_at(), self.b.as_ref().and_then(|b| b.poll_at())]
                .into_iter()
                .flatten()
                .chain(self.a2b.front().map(|x| x.0))
                .chain(self.b2a.front().map(|x| x.0))
                .min();
            if let Some(t) = next
                && t <= self.now
            {
                // Due now: another round (poll_at reports "now" for pending
                // output); guard against a connection that never settles.
                if !self.round() {
                    next = [self.a.poll_at(), self.b.as_ref().and_then(|b| b.poll_at())]
                        .into_iter()
                        .flatten()
                        .filter(|t| *t > self.now)
                        .chain(self.a2b.front().map(|x| x.0))
                        .chain(self.b2a.front().map(|x| x.0))
                        .min();
                } else {
                    continue;
                }
            }
            match next {
                Some(t) if t <= until => self.now = t.max(self.now),
                _ => {
                    self.now = until;
                    while self.round() {}
                    return;
                }
            }
        }
        panic!("simulation did not settle");
    }

    /// A keeps writing `data` from `off` on, `rounds` times, running the
    /// wire for `step` after each write; returns how far it got.
    pub(super) fn a_writes(
        &mut self,
        data: &[u8],
        mut off: usize,
        rounds: usize,
        step: Duration,
    ) -> usize {
        for _ in 0..rounds {
            off += self.a.send(&data[off..]).unwrap_or(0);
            self.run(step);
        }
        off
    }

    pub(super) fn established(&mut self) {
        self.run(Duration::from_millis(4) + 10 * self.delay);
        assert_eq!(self.a.state(), State::Established);
        assert_eq!(self.b().state(), State::Established);
    }
}

/// What A sends now, straight off `poll_transmit` (not through the wire):
/// each segment's sequence number and payload length.
pub(super) fn poll_segments(c: &mut Connection, now: Instant) -> Vec<(SeqNum, usize)> {
    let mut segs = Vec::new();
    c.poll_transmit(now, 1500, |r, x, y| {
        segs.push((r.seq, x.len() + y.len()));
        true
    });
    segs
}

pub(super) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Writes all of `data` from A, running the wire until B read it all.
pub(super) fn transfer(w: &mut Wire, data: &[u8], limit: Duration) {
    let mut off = 0;
    let deadline = w.now + limit;
    while w.b_rx.len() < data.len() {
        assert!(
            w.now < deadline,
            "transfer stalled at {} of {}",
            w.b_rx.len(),
            data.len()
        );
        if off < data.len() {
            if let Ok(n) = w.a.send(&data[off..]) {
                off += n;
            }
        }
        w.run(Duration::from_millis(10));
    }
    assert_eq!(w.b_rx, data);
}

/// A segment "from the peer" of `c`: sequence RCV.NXT + `off`, a valid ACK,
/// a fresh timestamp.
pub(super) fn from_peer(c: &Connection, off: i64, flags: u8) -> TcpRepr {
    let mut options = crate::TcpOptions::default();
    if let Some(ts) = c.ts.peer {
        options.timestamps = Some((ts.recent.wrapping_add(1), 0));
    }
    TcpRepr {
        src_port: c.remote().port(),
        dst_port: c.local().port(),
        seq: SeqNum(c.rcv.nxt.0.wrapping_add(off as u32)),
        ack: c.snd.nxt,
        flags: crate::Flags(flags),
        window: 1000,
        options,
        urgent: 0,
    }
}

/// Drives a fresh pair until connection `which` ("a" or "b") is in `state`,
/// then returns that connection (taken out of the wire).
pub(super) fn in_state(state: State) -> Connection {
    let mut w = Wire::new(cfg(), cfg());
    let hold_fins = |w: &mut Wire, a: bool, b: bool| {
        w.filter_a = Box::new(move |_, r, _| {
            if a && r.flags.fin() {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
        w.filter_b = Box::new(move |_, r, _| {
            if b && r.flags.fin() {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
    };
    match state {
        State::SynReceived => {
            w.filter_b = Box::new(|_, _, _| Fate::Drop);
            w.run(Duration::from_millis(6));
            return w.b.take().unwrap();
        }
        State::Established => {
            w.established();
            return w.a;
        }
        _ => w.established(),
    }
    let now = w.now;
    match state {
        State::FinWait1 => {
            hold_fins(&mut w, true, false);
            w.a.close(now);
            w.run(Duration::from_millis(20));
            w.a
        }
        State::FinWait2 => {
            w.a.close(now);
            w.run(Duration::from_millis(20));
            w.a
        }
        State::CloseWait => {
            w.a.close(now);
            w.run(Duration::from_millis(20));
            w.b.take().unwrap()
        }
        State::LastAck => {
            hold_fins(&mut w, false, true);
            w.a.close(now);
            w.run(Duration::from_millis(20));
            w.b().close(now);
            w.run(Duration::from_millis(20));
            w.b.take().unwrap()
        }
        State::Closing => {
            // Both FINs cross; A's ACK of B's FIN is lost, so B stays in
            // CLOSING.
            w.a.close(now);
            w.b().close(now);
            w.filter_a = Box::new(|_, r, _| {
                if r.flags.fin() {
                    Fate::Deliver
                } else {
                    Fate::Drop
                }
            });
            w.run(Duration::from_millis(20));
            w.b.take().unwrap()
        }
        State::TimeWait => {
            w.a.close(now);
            w.run(Duration::from_millis(20));
            w.b().close(now);
            w.run(Duration::from_millis(20));
            w.a
        }
        other => panic!("no recipe for {other:?}"),
    }
}

/// A wire whose B answers with SYN cookies.
pub(super) fn cookie_wire(cfg_a: TcpConfig, cfg_b: TcpConfig) -> Wire {
    let mut w = Wire::new(cfg_a, cfg_b);
    w.cookies_b = Some(crate::syncookie::SynCookies::new((11, 13), w.now));
    w
}

/// Two connections whose SYNs cross (simultaneous open), each left in
/// SYN-RECEIVED; returns them with the SYN-ACKs each then sent.
pub(super) fn crossed_syns(c: &TcpConfig) -> (Connection, Connection, Vec<Seg>, Vec<Seg>) {
    let now = Instant::now();
    let mut a = Connection::connect(c, A, B, SeqNum(100), 1, now, now);
    let mut b = Connection::connect(c, B, A, SeqNum(900), 2, now, now);
    let collect = |conn: &mut Connection| {
        let mut v = Vec::new();
        conn.poll_transmit(now, 1500, |r, x, y| {
            v.push((*r, [x, y].concat()));
            true
        });
        v
    };
    let sa = collect(&mut a);
    let sb = collect(&mut b);
    for (r, p) in &sb {
        a.handle_segment(now, r, p);
    }
    for (r, p) in &sa {
        b.handle_segment(now, r, p);
    }
    assert_eq!(a.state(), State::SynReceived);
    assert_eq!(b.state(), State::SynReceived);
    let sa = collect(&mut a);
    let sb = collect(&mut b);
    (a, b, sa, sb)
}

/// Payload sizes of the data segments A sent from index `from` on.
pub(super) fn a_data_sizes(w: &Wire, from: usize) -> Vec<usize> {
    w.sent_a[from..]
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(_, p)| p.len())
        .collect()
}
