//! TCP on the interface: the connection table (hash of the 4-tuple, then
//! TIME-WAIT records, then the listener by local address -- never a scan
//! of all connections), listeners with bounded SYN and accept queues and
//! SYN cookies, compact TIME-WAIT records, the orphan limit, memory
//! charging, the timer queue, resets for segments that belong to nothing,
//! and the socket calls.
//!
//! By concern:
//! - this file: the socket types ([`TcpSocket`], [`TcpListener`]) and
//!   limits;
//! - `table`: the connection table and demultiplexing ([`TcpTable`]);
//! - `input`: segments from the IP layer to their connection, TIME-WAIT
//!   record or listener;
//! - `output`: emission (segments and super segments, resets) and the
//!   servicing of one connection;
//! - `poll`: scheduling, timers, the ready list and the life cycle after
//!   a change;
//! - `calls`: the public socket calls;
//! - `listen`: SYNs, SYN cookies and the SYN/accept queues;
//! - `resources`: TIME-WAIT records, memory charging, ICMP errors.

mod calls;
mod input;
mod listen;
mod output;
mod poll;
mod resources;
mod table;

pub(crate) use table::{PortUse, TcpTable};

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use tcp::{Connection, TcpConfig, TimeWait};

use crate::slab::Handle;

/// When a listener answers SYNs with SYN cookies (RFC 4987 3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SynCookieMode {
    /// Never: a full SYN queue evicts its oldest half-open entry.
    Off,
    /// When the listener's SYN queue is full or memory is short (Linux's
    /// `tcp_syncookies = 1`, the default).
    #[default]
    Auto,
    /// For every SYN (`tcp_syncookies = 2`; for tests).
    Always,
}

/// Limits on what peers can make TCP hold, with Linux's sysctls as the
/// model. The memory budget ([`crate::MemoryBudget`]) caps bytes; these cap
/// counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// SYN cookies (`tcp_syncookies`).
    pub syncookies: SynCookieMode,
    /// TIME-WAIT records held at most (`tcp_max_tw_buckets`); beyond it a
    /// connection closes without TIME-WAIT. Default 65,536 (about 15 MiB).
    pub max_time_wait: usize,
    /// Orphaned connections (closed by the application, still finishing)
    /// at most (`tcp_max_orphans`); a connection closed beyond it is reset.
    /// Default 16,384.
    pub max_orphans: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            syncookies: SynCookieMode::Auto,
            max_time_wait: 65_536,
            max_orphans: 16_384,
        }
    }
}

/// Memory charged per TIME-WAIT record: the record, its map entry and its
/// timer entry.
const TIME_WAIT_COST: usize = std::mem::size_of::<TimeWait>() + 96;

/// Handle of a TCP connection.
pub type TcpHandle = Handle<TcpSocket>;
/// Handle of a TCP listener.
pub type ListenerHandle = Handle<TcpListener>;

/// A connection and its bookkeeping on the interface.
#[derive(Debug)]
pub struct TcpSocket {
    conn: Connection,
    /// The listener whose SYN queue holds this connection until it is
    /// established.
    embryonic_of: Option<ListenerHandle>,
    /// The application let go of it: remove once it has closed.
    orphan: bool,
    /// Present in the 4-tuple table.
    linked: bool,
    /// The earliest timer entry pending for it in the heap.
    scheduled: Option<Instant>,
    /// In the ready list.
    queued: bool,
    /// An event for it is waiting in the event list.
    event_pending: bool,
    /// Bytes charged to the memory budget for it.
    charged: usize,
    /// On the list of connections held back by memory pressure.
    mem_waiting: bool,
    /// TCP_DEFER_ACCEPT: established, but kept from the accept queue until
    /// data arrives or this time passes.
    defer_until: Option<Instant>,
}

impl TcpSocket {
    fn new(conn: Connection, embryonic_of: Option<ListenerHandle>) -> TcpSocket {
        TcpSocket {
            conn,
            embryonic_of,
            orphan: false,
            linked: true,
            scheduled: None,
            queued: false,
            event_pending: false,
            charged: 0,
            mem_waiting: false,
            defer_until: None,
        }
    }
}

impl TcpSocket {
    /// The connection (state, statistics, readiness).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// A listening socket.
#[derive(Debug)]
pub struct TcpListener {
    local: SocketAddrV4,
    backlog: usize,
    syn_queue: usize,
    accept_queue: VecDeque<TcpHandle>,
    /// Half-open connections in arrival order (may hold handles that left
    /// the SYN queue; they are skipped, and compacted away).
    syn_fifo: VecDeque<TcpHandle>,
    /// The last time a SYN was answered with a cookie: cookies are only
    /// accepted within their lifetime after that (as Linux's
    /// `tcp_synq_no_recent_overflow`), so forged ACKs have nothing to aim
    /// at outside floods.
    last_cookie: Option<Instant>,
    cfg: TcpConfig,
    dropped_syns: u64,
    /// Bound with SO_REUSEPORT (shares its address with its group).
    reuseport: bool,
    /// TCP_DEFER_ACCEPT.
    defer_accept: Option<Duration>,
}

impl TcpListener {
    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Connections waiting to be accepted.
    pub fn pending(&self) -> usize {
        self.accept_queue.len()
    }

    /// Connections still in the handshake.
    pub fn embryonic(&self) -> usize {
        self.syn_queue
    }

    /// SYNs dropped because a queue was full.
    pub fn dropped_syns(&self) -> u64 {
        self.dropped_syns
    }

    /// The configuration accepted connections inherit (buffers, options,
    /// `tos` for its SYN-ACKs too).
    pub fn config_mut(&mut self) -> &mut TcpConfig {
        &mut self.cfg
    }

    /// True when bound with SO_REUSEPORT.
    pub fn reuseport(&self) -> bool {
        self.reuseport
    }

    /// TCP_DEFER_ACCEPT: with `Some(d)`, a connection whose handshake is
    /// done is handed to accept only once its first data (or its FIN)
    /// arrives, or once `d` has passed since it was established, whichever
    /// is first; `None` (or zero) hands connections over at once.
    ///
    /// Linux instead drops the bare final ACK of the handshake while the
    /// period lasts (the request stays in the SYN queue, `inet_rsk(req)->
    /// acked` set, tcp_check_req), retransmits the SYN-ACK near its end and
    /// establishes the connection on data, or on the ACK answering that
    /// SYN-ACK after the period (the period counted in SYN-ACK
    /// retransmissions from the SYN, rounded up). ustack establishes the
    /// connection on the ACK (so the client's data is acknowledged as
    /// usual) and holds it out of the accept queue instead, counted in the
    /// SYN queue as Linux counts the request; the period is counted from
    /// the final ACK. What the application sees is the same: accept wakes
    /// on the first data, or after the period without it.
    pub fn set_defer_accept(&mut self, defer: Option<Duration>) {
        self.defer_accept = defer.filter(|d| !d.is_zero());
    }

    /// The TCP_DEFER_ACCEPT period, if set.
    pub fn defer_accept(&self) -> Option<Duration> {
        self.defer_accept
    }
}

/// The listeners bound to one local address: one, or several that all set
/// SO_REUSEPORT.
#[derive(Debug, Default)]
struct ListenGroup {
    members: Vec<ListenerHandle>,
    reuseport: bool,
}

/// The smallest TCP_MAXSEG Linux accepts (`TCP_MIN_MSS`).
pub(crate) const TCP_MIN_MSS: u16 = 88;

/// Most listeners one SO_REUSEPORT group holds.
pub(crate) const MAX_REUSEPORT_GROUP: usize = 256;
