//! UDP demultiplexing: which socket gets a datagram.
//!
//! Three exact-match hash lookups at most, never a scan: a connected socket
//! matched by the full 4-tuple; then a socket bound to (destination address,
//! port); then one bound to (0.0.0.0, port). A connected socket only takes
//! datagrams from its peer.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Why a bind failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BindError {
    /// The address (or a wildcard/specific address overlapping it) is taken.
    AddrInUse,
    /// No ephemeral port is free.
    NoPortsLeft,
}

/// The socket tables of one interface. `H` is the socket handle type.
#[derive(Debug)]
pub struct UdpTable<H> {
    bound: HashMap<SocketAddrV4, H>,
    connected: HashMap<(SocketAddrV4, SocketAddrV4), H>,
    /// Number of bindings per port, to detect wildcard/specific overlap in O(1).
    port_users: HashMap<u16, u32>,
}

impl<H: Copy + Eq + Hash> Default for UdpTable<H> {
    fn default() -> Self {
        UdpTable {
            bound: HashMap::new(),
            connected: HashMap::new(),
            port_users: HashMap::new(),
        }
    }
}

impl<H: Copy + Eq + Hash> UdpTable<H> {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when some socket is bound to `port` on any address.
    pub fn port_in_use(&self, port: u16) -> bool {
        self.port_users.contains_key(&port)
    }

    /// Binds `local` to `handle`. A wildcard address conflicts with every
    /// binding of the port and vice versa (Linux without SO_REUSEADDR).
    pub fn bind(&mut self, local: SocketAddrV4, handle: H) -> Result<(), BindError> {
        let port = local.port();
        let clash = if local.ip().is_unspecified() {
            self.port_in_use(port)
        } else {
            self.bound.contains_key(&local)
                || self
                    .bound
                    .contains_key(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        };
        if clash {
            return Err(BindError::AddrInUse);
        }
        self.bound.insert(local, handle);
        *self.port_users.entry(port).or_insert(0) += 1;
        Ok(())
    }

    /// Removes a binding (and its connection, if any).
    pub fn unbind(&mut self, local: SocketAddrV4, remote: Option<SocketAddrV4>) {
        if self.bound.remove(&local).is_some()
            && let Some(n) = self.port_users.get_mut(&local.port())
        {
            *n -= 1;
            if *n == 0 {
                self.port_users.remove(&local.port());
            }
        }
        if let Some(remote) = remote {
            self.disconnect(local, remote);
        }
    }

    /// Registers the connection of a bound socket, so datagrams from
    /// `remote` find it first.
    pub fn connect(&mut self, local: SocketAddrV4, remote: SocketAddrV4, handle: H) {
        self.connected.insert((local, remote), handle);
    }

    /// Forgets a connection.
    pub fn disconnect(&mut self, local: SocketAddrV4, remote: SocketAddrV4) {
        self.connected.remove(&(local, remote));
    }

    /// The socket a datagram from `remote` to `local` goes to. `is_connected`
    /// tells whether a socket found by binding is connected (to another peer,
    /// since the 4-tuple lookup missed), in which case it does not match.
    pub fn lookup(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        is_connected: impl Fn(H) -> bool,
    ) -> Option<H> {
        if !self.connected.is_empty() {
            // A connection may be registered on the specific or the wildcard
            // local address, depending on how the socket was bound.
            if let Some(h) = self.connected.get(&(local, remote)) {
                return Some(*h);
            }
            let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port());
            if let Some(h) = self.connected.get(&(any, remote)) {
                return Some(*h);
            }
        }
        let found = self.bound.get(&local).or_else(|| {
            self.bound
                .get(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port()))
        })?;
        (!is_connected(*found)).then_some(*found)
    }

    /// Number of bound sockets.
    pub fn len(&self) -> usize {
        self.bound.len()
    }

    /// True when no socket is bound.
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }
}

#[cfg(test)]
mod tests;
