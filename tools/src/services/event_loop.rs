//! The services' one event-loop thread: listeners, connections and UDP
//! echo sockets on one [`Poller`], idle deadlines in a timer heap.
//!
//! A wait returns the ready sockets only, so an idle connection costs
//! nothing per event. Each connection has one entry in the timer heap at
//! a time, for its earliest deadline: progress only moves the deadline in
//! the connection itself, and the entry, when it comes due, is pushed
//! again for the later deadline (at most one heap operation per idle
//! period, none per event).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sockets_api::{Interest, PollEvent, Poller, Stack, TcpListener, TcpStream, UdpSocket};

use super::handlers::{ConnHandler, ConnIo, Flow, handler_for};
use super::{Context, Ending, Kind, Refusal, spawn_http};

/// Token bits: listeners and UDP sockets carry a tag in the top bits;
/// connections carry their slot (low 32 bits) and its generation.
const TAG_LISTENER: u64 = 1 << 63;
const TAG_UDP: u64 = 1 << 62;
const GENERATION_MASK: u32 = (1 << 30) - 1;
/// Readiness reports taken per wait.
const EVENTS: usize = 256;
/// The loop's I/O buffer (shared by all connections).
const BUFFER: usize = 64 * 1024;
/// Connections accepted per listener report (more come with the next).
const ACCEPTS_PER_EVENT: usize = 64;
/// Datagrams echoed per report.
const DATAGRAMS_PER_EVENT: usize = 64;

/// One connection the loop serves.
struct Conn {
    stream: TcpStream,
    /// Registry id.
    id: u64,
    handler: Box<dyn ConnHandler>,
    /// When the peer last made progress.
    last_progress: Instant,
    /// The deadline of this connection's entry in the timer heap.
    armed: Instant,
    interest: Interest,
}

pub(super) struct EventLoop {
    ctx: Arc<Context>,
    poller: Poller,
    listeners: Vec<(Kind, TcpListener)>,
    udp: Vec<UdpSocket>,
    conns: Vec<Option<Conn>>,
    generations: Vec<u32>,
    free: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    buf: Vec<u8>,
}

impl EventLoop {
    pub(super) fn new(
        stack: &Stack,
        ctx: Arc<Context>,
        listeners: Vec<(Kind, TcpListener)>,
        udp: Vec<UdpSocket>,
    ) -> io::Result<EventLoop> {
        let poller = Poller::new(stack)?;
        for (i, (_, l)) in listeners.iter().enumerate() {
            l.set_nonblocking(true)?;
            poller.register(l.as_fd(), TAG_LISTENER | i as u64, Interest::READABLE)?;
        }
        for (i, u) in udp.iter().enumerate() {
            u.set_nonblocking(true)?;
            poller.register(u.as_fd(), TAG_UDP | i as u64, Interest::READABLE)?;
        }
        Ok(EventLoop {
            ctx,
            poller,
            listeners,
            udp,
            conns: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            buf: vec![0u8; BUFFER],
        })
    }

    /// Serves until the stack stops.
    pub(super) fn run(mut self) {
        let mut events = vec![PollEvent::default(); EVENTS];
        loop {
            let timeout = self
                .timers
                .peek()
                .map(|Reverse((t, _, _))| t.saturating_duration_since(Instant::now()));
            let n = match self.poller.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => break,
                Err(e) => {
                    log::error!("services: wait failed: {e}");
                    break;
                }
            };
            for ev in &events[..n] {
                if ev.token & TAG_LISTENER != 0 {
                    self.accept((ev.token & !TAG_LISTENER) as usize);
                } else if ev.token & TAG_UDP != 0 {
                    self.udp_echo((ev.token & !TAG_UDP) as usize);
                } else {
                    self.conn_event(ev);
                }
            }
            self.expire(Instant::now());
        }
        // The stack stopped: the registry was frozen before; let go.
        for slot in 0..self.conns.len() {
            self.close(slot, Ending::Clean, false);
        }
    }

    fn accept(&mut self, index: usize) {
        for _ in 0..ACCEPTS_PER_EVENT {
            let (kind, listener) = &self.listeners[index];
            let kind = *kind;
            let (stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("{}: accept failed: {e}", kind.name());
                    return;
                }
            };
            let SocketAddr::V4(peer) = peer else { continue };
            self.admit(kind, stream, peer);
        }
    }

    /// A new connection: refused over a cap, otherwise served.
    fn admit(&mut self, kind: Kind, stream: TcpStream, peer: SocketAddrV4) {
        let id = match self
            .ctx
            .registry
            .open(&self.ctx.limits, kind, peer, &stream)
        {
            Ok(id) => id,
            Err(why) => {
                log::debug!(
                    "{} {peer}: refused ({})",
                    kind.name(),
                    match why {
                        Refusal::MaxConns => "--max-conns",
                        Refusal::PerIp => "--max-conns-per-ip",
                    }
                );
                // SO_LINGER 0: the close sends a RST and frees everything.
                let _ = stream.set_linger(Some(Duration::ZERO));
                return;
            }
        };
        let Some(handler) = handler_for(kind) else {
            spawn_http(&self.ctx, id, stream, peer);
            return;
        };
        let setup = stream
            .set_nonblocking(true)
            .and_then(|()| stream.set_nodelay(kind == Kind::Echo));
        if let Err(e) = setup {
            self.ctx.registry.finish(id, &Ending::Failed(e), None);
            return;
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(None);
                self.generations.push(0);
                self.conns.len() - 1
            }
        };
        let now = Instant::now();
        let interest = handler.interest();
        let armed = now + self.ctx.limits.idle_timeout;
        let token = self.token(slot);
        if let Err(e) = self.poller.register(stream.as_fd(), token, interest) {
            self.free.push(slot);
            self.ctx.registry.finish(id, &Ending::Failed(e), None);
            return;
        }
        self.conns[slot] = Some(Conn {
            stream,
            id,
            handler,
            last_progress: now,
            armed,
            interest,
        });
        self.timers
            .push(Reverse((armed, slot, self.generations[slot])));
    }

    fn token(&self, slot: usize) -> u64 {
        (u64::from(self.generations[slot]) << 32) | slot as u64
    }

    fn conn_event(&mut self, ev: &PollEvent) {
        let slot = (ev.token & 0xffff_ffff) as usize;
        if self.token(slot) != ev.token {
            return;
        }
        let Some(conn) = self.conns[slot].as_mut() else {
            return;
        };
        let mut io = ConnIo {
            stream: &conn.stream,
            buf: &mut self.buf,
            chargen: &self.ctx.chargen,
            progress: false,
        };
        let mut flow = Ok(Flow::Continue);
        if ev.is_readable() || ev.is_error() || ev.is_hangup() {
            flow = conn.handler.on_readable(&mut io);
        }
        if ev.is_writable() && matches!(flow, Ok(Flow::Continue)) {
            flow = conn.handler.on_writable(&mut io);
        }
        let progress = io.progress;
        match flow {
            Ok(Flow::Continue) => {}
            Ok(Flow::Close(ending)) => return self.close(slot, ending, false),
            Err(e) => return self.close(slot, Ending::from(e), false),
        }
        if progress {
            conn.last_progress = Instant::now();
        }
        let interest = conn.handler.interest();
        if interest != conn.interest {
            conn.interest = interest;
            if let Err(e) = self.poller.modify(conn.stream.as_fd(), ev.token, interest) {
                return self.close(slot, Ending::Failed(e), false);
            }
        }
        // A protocol deadline earlier than the armed one needs an entry of
        // its own; the idle deadline only ever moves later.
        if let Some(t) = conn.handler.poll_timeout()
            && t < conn.armed
        {
            conn.armed = t;
            self.timers.push(Reverse((t, slot, self.generations[slot])));
        }
    }

    /// Handles the timer entries that came due.
    fn expire(&mut self, now: Instant) {
        let idle = self.ctx.limits.idle_timeout;
        while let Some(&Reverse((t, slot, generation))) = self.timers.peek() {
            if t > now {
                return;
            }
            self.timers.pop();
            if self.generations[slot] != generation {
                continue;
            }
            let Some(conn) = self.conns[slot].as_mut() else {
                continue;
            };
            if conn.armed != t {
                // Superseded by an earlier entry.
                continue;
            }
            if conn.handler.poll_timeout().is_some_and(|d| d <= now) {
                let mut io = ConnIo {
                    stream: &conn.stream,
                    buf: &mut self.buf,
                    chargen: &self.ctx.chargen,
                    progress: false,
                };
                let flow = conn.handler.on_timeout(&mut io, now);
                if io.progress {
                    conn.last_progress = now;
                }
                match flow {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Close(ending)) => {
                        self.close(slot, ending, false);
                        continue;
                    }
                    Err(e) => {
                        self.close(slot, Ending::from(e), false);
                        continue;
                    }
                }
            }
            let idle_at = conn.last_progress + idle;
            if idle_at <= now {
                self.close(slot, Ending::Idle, true);
                continue;
            }
            let next = conn
                .handler
                .poll_timeout()
                .map_or(idle_at, |d| d.min(idle_at));
            conn.armed = next;
            self.timers.push(Reverse((next, slot, generation)));
        }
    }

    /// Ends the connection in `slot`: its statistics go to the registry,
    /// then the close (a RST when `abort`: the peer is gone, and the stack
    /// frees at once what it held for it).
    fn close(&mut self, slot: usize, ending: Ending, abort: bool) {
        let Some(conn) = self.conns[slot].take() else {
            return;
        };
        // 30 bits: the generation stays clear of the token's tags.
        self.generations[slot] = (self.generations[slot] + 1) & GENERATION_MASK;
        self.free.push(slot);
        let stats = conn.stream.stats().ok();
        self.ctx.registry.finish(conn.id, &ending, stats.as_ref());
        if abort {
            let _ = conn.stream.set_linger(Some(Duration::ZERO));
        }
        // Closing the descriptor removes its registration; dropping the
        // last handle (the registry's went in `finish`) closes it, after
        // what was written (then a FIN) unless aborted.
    }

    fn udp_echo(&mut self, index: usize) {
        let sock = &self.udp[index];
        for _ in 0..DATAGRAMS_PER_EVENT {
            match sock.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    if let Err(e) = sock.send_to(&self.buf[..n], from) {
                        log::debug!("UDP echo to {from}: {e}");
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::debug!("UDP echo: {e}");
                    return;
                }
            }
        }
    }
}
