//! The deterministic network simulation: whole ustack interfaces talking
//! over simulated links under a virtual clock.
//!
//! - [`Sim`] owns the hosts, the links and the clock. The clock jumps from
//!   event to event (a frame arriving, an interface timer, an application
//!   wake-up), so a 60-second timeout costs microseconds of real time.
//! - Hosts ([`Sim::add_host`]) each run one [`stack::Interface`]; tests call
//!   its socket API directly with [`Sim::iface`], or through
//!   [`Sim::with_host`] for calls that transmit.
//! - Links: point-to-point cables ([`Sim::add_link`]) and switches
//!   ([`Sim::add_switch`]), each direction with its own [`LinkConfig`]:
//!   latency, jitter, bandwidth with a drop-tail queue, loss, duplication,
//!   reordering and corruption (the model is described in [`link`]).
//!   [`LinkStats`] counts what happened to the frames.
//! - Randomness: one master seed per test, from [`seed_from_env`] (so
//!   `SIM_SEED=N cargo test ...` replays a run); every link direction and
//!   every host gets its own stream derived from it. A failing test prints
//!   `SIM_SEED=<seed> replays this test`.
//! - Captures: [`Sim::capture`] writes one link to a pcap file; with
//!   `SIM_PCAP_DIR=/some/dir` every link of every test is captured there as
//!   `<test name>-link<N>.pcap`. Times in captures are virtual (a
//!   simulation starts at [`PCAP_EPOCH`] after the Unix epoch), so a seed
//!   always produces the same bytes.
//!
//! # Applications
//!
//! Protocol code needs something on top that reads and writes sockets. Two
//! ways, freely mixed:
//!
//! - **Applications** ([`App`], added with [`Sim::add_app`]): a closure or a
//!   struct whose `step` runs on its host after every event batch that
//!   touched the host (frames arrived, timers fired) and whenever it asked to
//!   be woken ([`HostCtx::wake_at`]). Servers (echo, discard), clients with
//!   timers and RPC peers are written this way and run by themselves while
//!   the test waits for a condition. Implement [`App`] on a struct to read
//!   its state back with [`Sim::app`]. [`apps`] has ready-made ones
//!   ([`UdpEcho`], [`UdpSource`], [`UdpSink`]) and [`ping`]; [`rpc_apps`]
//!   drives the `rpc` crate's sans-IO cores over TCP (RPC clients and
//!   servers, 2PC nodes that can crash at any step of the protocol).
//! - **The test itself**, between or inside `run_until` conditions, with
//!   [`Sim::with_host`] (which puts sent frames on the link) and
//!   [`Sim::iface`].
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use std::time::Duration;
//! use sim::sim::{host_config, seed_from_env, HostCtx, LinkConfig, Sim};
//!
//! let mut sim = Sim::new(seed_from_env(1));
//! let a = sim.add_host(host_config(1));
//! let b = sim.add_host(host_config(2));
//! let link = sim.add_link(a, b, LinkConfig::with_latency_of(Duration::from_millis(10)));
//!
//! // B runs a UDP echo server.
//! let any7 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7);
//! let server = sim.iface(b).udp_bind(any7).unwrap();
//! sim.add_app(b, move |cx: &mut HostCtx<'_>| {
//!     let mut buf = [0u8; 2048];
//!     while let Ok((n, from)) = cx.iface.udp_recv_from(server, &mut buf) {
//!         let _ = cx.iface.udp_send_to(cx.now, server, &buf[..n], Some(from), cx.tx);
//!     }
//! });
//!
//! // The test is the client.
//! let client = sim.iface(a).udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
//! let dst = SocketAddrV4::new(sim.ip(b), 7);
//! let sent_at = sim.now();
//! sim.with_host(a, |cx| cx.iface.udp_send_to(cx.now, client, b"hello", Some(dst), cx.tx))
//!     .unwrap();
//! let reply = sim.run_until_some(
//!     |sim| {
//!         let mut buf = [0u8; 64];
//!         let (n, _) = sim.iface(a).udp_recv_from(client, &mut buf).ok()?;
//!         Some(buf[..n].to_vec())
//!     },
//!     Duration::from_secs(1),
//! );
//! assert_eq!(reply.as_deref(), Some(&b"hello"[..]));
//! // ARP request and reply, then the datagram and its echo: 4 x 10 ms.
//! assert_eq!(sim.now() - sent_at, Duration::from_millis(40));
//! assert_eq!(sim.link_stats(link).delivered, 4);
//! ```
//!
//! An application with a timer asks to be woken on every run:
//!
//! ```
//! # use std::net::{Ipv4Addr, SocketAddrV4};
//! # use std::time::Duration;
//! # use sim::sim::{host_config, HostCtx, LinkConfig, Sim};
//! # let mut sim = Sim::new(1);
//! # let a = sim.add_host(host_config(1));
//! # let b = sim.add_host(host_config(2));
//! # sim.add_link(a, b, LinkConfig::default());
//! let sock = sim.iface(a).udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
//! let dst = SocketAddrV4::new(sim.ip(b), 9);
//! let mut next = sim.now();
//! sim.add_app(a, move |cx: &mut HostCtx<'_>| {
//!     if cx.now >= next {
//!         let _ = cx.iface.udp_send_to(cx.now, sock, b"tick", Some(dst), cx.tx);
//!         next += Duration::from_millis(100);
//!     }
//!     cx.wake_at(next);
//! });
//! sim.run_for(Duration::from_millis(950));
//! assert_eq!(sim.iface_ref(a).counters().udp_sent, 10); // at 0, 100, ... 900 ms
//! ```

pub mod apps;
pub mod attack;
mod engine;
pub mod experiments;
mod host;
pub mod link;
mod net;
mod pcap;
pub mod rpc_apps;
mod seed;
pub mod tcp_apps;

pub use apps::{Received, UdpEcho, UdpSink, UdpSource, pattern, ping};
pub use engine::{DEFAULT_LIVELOCK_LIMIT, Sim};
pub use host::{App, AppId, HostCtx, HostId};
pub use link::{LinkConfig, LinkStats};
pub use net::LinkId;
pub use pcap::{CapturePoint, PCAP_DIR_ENV, PCAP_EPOCH};
pub use seed::{SEED_ENV, SeedGuard, Stream, derive_seed, parse_seed, seed_from_env};
pub use tcp_apps::{TcpEchoServer, TcpSink, TcpSource, stream_byte};

use std::net::Ipv4Addr;

use ethernet::MacAddr;
use ip::Ipv4Cidr;
use stack::InterfaceConfig;

/// The usual configuration of host number `n` (1 to 254) on a simulated
/// /24: address `10.0.0.n`, MAC `02:00:00:00:00:n`, no gratuitous ARP at
/// start-up (so captures begin with the test's own traffic), every other
/// setting the [`InterfaceConfig::new`] default, including seed 0, which
/// [`Sim::add_host`] replaces with one derived from the master seed.
///
/// # Panics
/// When `n` is 0 or 255 (network and broadcast addresses).
pub fn host_config(n: u8) -> InterfaceConfig {
    assert!(
        (1..=254).contains(&n),
        "host_config({n}): host numbers are 1..=254"
    );
    let mut config = InterfaceConfig::new(MacAddr([2, 0, 0, 0, 0, n]), host_cidr(n));
    config.announce = false;
    config
}

/// `10.0.0.n/24`, the address [`host_config`] gives host `n`.
pub fn host_cidr(n: u8) -> Ipv4Cidr {
    match Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, n), 24) {
        Some(c) => c,
        None => unreachable!("/24 is a valid prefix length"),
    }
}
