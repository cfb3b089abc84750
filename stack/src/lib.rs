//! The ustack interface and its surroundings: it ties Ethernet, ARP, IPv4,
//! ICMP, UDP and TCP together ([`Interface`]), provides devices (TAP,
//! in-memory pair, pcap recorder, fault injector) and runs the event loop.

#![warn(missing_docs)]

pub mod counters;
pub mod device;
pub mod error;
mod iface;
pub mod memory;
pub mod runtime;
pub mod slab;
pub mod sys;

pub use counters::{CounterEntry, Counters, Defenses, DropReason};
pub use device::{Device, FrameSink, Medium};
pub use error::SocketError;
pub use iface::{
    ConfigError, DEFAULT_RCVBUF, EchoReply, Event, IcmpHandle, IcmpSocket, Interface,
    InterfaceConfig, IpLayer, ListenerHandle, SendError, SocketInfo, SocketKind, SynCookieMode,
    TcpHandle, TcpLimits, TcpListener, TcpSocket, UdpHandle, UdpSocket, ss_state_name,
};
pub use memory::{DEFAULT_MEM_LIMIT, MemoryBudget, MemoryPressure, MemoryStats};
