//! BSD-like sockets and std::net-shaped types on top of the ustack stack.
//!
//! A [`Stack`] runs one ustack interface on its own thread (on a TAP device,
//! or on an in-memory link for tests and examples). Applications use it
//! either through BSD-shaped calls on integer descriptors ([`Stack::socket`],
//! [`Stack::bind`], [`Stack::connect`], [`Stack::poll`], ...) or through
//! [`TcpListener`], [`TcpStream`] and [`UdpSocket`], which mirror their
//! `std::net` namesakes (`io::Read`/`io::Write`, timeouts, non-blocking
//! mode, `try_clone`; `Send + Sync`). Errors are `io::Error`s carrying the
//! errno Linux reports in the same situation.
//!
//! Writing data copies it into the connection's send buffer under a short
//! lock; the stack thread is woken (one eventfd write) only when it sleeps.
//! Blocking calls sleep on a condition variable, never spin.
//!
//! Two stacks in one process, an echo server and a client:
//!
//! ```
//! use std::io::{Read, Write};
//! use sockets_api::{StackBuilder, TcpListener, TcpStream};
//!
//! # fn main() -> std::io::Result<()> {
//! let (server, client) = StackBuilder::memory_pair(
//!     StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
//!     StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
//! )?;
//! let listener = TcpListener::bind(&server, "0.0.0.0:7")?;
//! std::thread::spawn(move || {
//!     let (mut conn, _) = listener.accept().unwrap();
//!     let mut buf = [0u8; 64];
//!     let n = conn.read(&mut buf).unwrap();
//!     conn.write_all(&buf[..n]).unwrap();
//! });
//! let mut stream = TcpStream::connect(&client, "10.0.0.1:7")?;
//! stream.write_all(b"hello")?;
//! let mut reply = [0u8; 5];
//! stream.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"hello");
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod builder;
mod calls;
mod io;
mod net;
mod options;
mod poll;
mod poller;
mod runtime;
mod tcp_socket;
mod types;
mod wakers;

#[cfg(feature = "tokio")]
pub mod tokio;

pub use builder::StackBuilder;
pub use net::{EchoReply, Incoming, PingSocket, TcpListener, TcpStream, UdpSocket};
pub use poller::{Interest, PollEvent, Poller};
pub use tcp_socket::TcpSocket;
pub use types::{
    Domain, Fd, FdSet, Ioctl, PollFd, Protocol, RecvMsg, Shutdown, SockOpt, SockOptName,
    SockOptValue, Type, events,
};

pub use ethernet::MacAddr;
pub use ip::{Ipv4Cidr, Route};
pub use stack::device::{DirectionStats, FaultConfig, FaultStats};
pub use stack::{
    CounterEntry, Counters, DEFAULT_MEM_LIMIT, MemoryStats, SocketInfo, SocketKind, SynCookieMode,
    TcpLimits, ss_state_name,
};
pub use stack::{Device, FrameSink, Medium};
pub use tcp::cc::Algorithm;
pub use tcp::{Keepalive, TcpConfig, TcpStats};

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use runtime::Shared;

/// A running ustack instance: an interface on a device, driven by its own
/// thread. Cheap to clone; the stack stops when the last clone (including
/// those held by sockets) is dropped, or on [`Stack::stop`]. Data
/// written before a graceful close is still delivered then.
#[derive(Clone)]
pub struct Stack {
    inner: Arc<StackInner>,
}

struct StackInner {
    shared: Arc<Shared>,
    info: StackInfo,
    /// The fault injector's counters, when faults are injected.
    faults: Option<stack::device::FaultStatsHandle>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Clone, Copy, Debug)]
struct StackInfo {
    addr: Ipv4Cidr,
    mac: MacAddr,
    mtu: usize,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("addr", &self.inner.info.addr)
            .field("mac", &self.inner.info.mac)
            .finish()
    }
}

impl Stack {
    /// Our address and prefix.
    pub fn addr(&self) -> Ipv4Cidr {
        self.inner.info.addr
    }

    /// Our MAC address.
    pub fn mac(&self) -> MacAddr {
        self.inner.info.mac
    }

    /// The link MTU.
    pub fn mtu(&self) -> usize {
        self.inner.info.mtu
    }

    /// A snapshot of the interface counters.
    pub fn counters(&self) -> Counters {
        self.shared().lock().iface.counters()
    }

    /// What the fault injector did so far, per direction
    /// ([`StackBuilder::faults`]); `None` when no faults are injected. Read
    /// without the stack lock: the injector publishes its counters as it
    /// goes (see [`stack::device::FaultStatsHandle`]), and once more when the
    /// stack stops.
    pub fn fault_stats(&self) -> Option<FaultStats> {
        self.inner.faults.as_ref().map(|h| h.snapshot())
    }

    /// A snapshot of every socket of the stack (TCP listeners, connections
    /// and TIME-WAIT records, UDP and ICMP sockets), including those the
    /// application already closed: their addresses, queues and, for TCP
    /// connections, what `TCP_INFO` reports. Taken under the stack lock,
    /// in one walk of the tables; the packet path keeps nothing for it.
    pub fn sockets(&self) -> Vec<SocketInfo> {
        self.shared().lock().iface.sockets()
    }

    /// A handle that reads the stack's figures ([`StackObserver::sockets`],
    /// [`StackObserver::counters`]) without keeping the stack running: the
    /// stack still stops when the last [`Stack`] clone is dropped, after
    /// which the observer reports the final figures.
    pub fn observer(&self) -> StackObserver {
        StackObserver {
            shared: Arc::clone(&self.inner.shared),
        }
    }

    /// TCP connections per state (compact TIME-WAIT records count as
    /// TIME-WAIT). Walks every connection: for reports.
    pub fn tcp_states(&self) -> Vec<(tcp::State, usize)> {
        self.shared().lock().iface.tcp_states()
    }

    /// Stops the stack: every socket is closed (gracefully: queued data is
    /// still delivered, up to the builder's shutdown linger), then the stack
    /// thread ends. Later calls fail with ENETDOWN. Idempotent.
    pub fn stop(&self) {
        self.inner.shutdown();
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }
}

/// Reads a stack's figures from another thread (a control socket, a
/// metrics endpoint) without keeping the stack alive; see
/// [`Stack::observer`]. Each call takes the stack lock briefly.
#[derive(Clone)]
pub struct StackObserver {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StackObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackObserver").finish_non_exhaustive()
    }
}

impl StackObserver {
    /// As [`Stack::sockets`].
    pub fn sockets(&self) -> Vec<SocketInfo> {
        self.shared.lock().iface.sockets()
    }

    /// As [`Stack::counters`].
    pub fn counters(&self) -> Counters {
        self.shared.lock().iface.counters()
    }

    /// As [`Stack::tcp_states`].
    pub fn tcp_states(&self) -> Vec<(tcp::State, usize)> {
        self.shared.lock().iface.tcp_states()
    }
}

impl StackInner {
    fn shutdown(&self) {
        {
            let mut core = self.shared.lock();
            if core.closing.is_none() {
                core.closing = Some(Instant::now());
                for fd in core.open_fds() {
                    calls::close_locked(&mut core, fd, false);
                }
            }
            self.shared.kick(&core);
        }
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

impl Drop for StackInner {
    fn drop(&mut self) {
        self.shutdown();
    }
}
