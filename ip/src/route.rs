//! The route table: longest-prefix match from destination to next hop.

use std::net::Ipv4Addr;

use crate::Ipv4Cidr;

/// One route.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Route {
    /// Destinations this route covers.
    pub dest: Ipv4Cidr,
    /// The gateway, or `None` for an on-link prefix (deliver directly).
    pub via: Option<Ipv4Addr>,
}

/// Where to send a datagram.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NextHop {
    /// The address to resolve with ARP: the destination itself when on-link,
    /// the gateway otherwise.
    pub addr: Ipv4Addr,
    /// True when the destination is on the local link.
    pub on_link: bool,
}

/// Routes kept sorted by prefix length, longest first, so the first match is
/// the longest-prefix match. Tables hold a handful of routes; a lookup never
/// depends on the number of sockets or neighbors.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        RouteTable::default()
    }

    /// Adds a route; a route for the same prefix is replaced.
    pub fn add(&mut self, route: Route) {
        let key = (route.dest.network(), route.dest.prefix_len());
        self.routes
            .retain(|r| (r.dest.network(), r.dest.prefix_len()) != key);
        let pos = self
            .routes
            .iter()
            .position(|r| r.dest.prefix_len() < route.dest.prefix_len())
            .unwrap_or(self.routes.len());
        self.routes.insert(pos, route);
    }

    /// Removes the route for `dest`'s prefix. Returns whether one existed.
    pub fn remove(&mut self, dest: Ipv4Cidr) -> bool {
        let before = self.routes.len();
        self.routes.retain(|r| {
            (r.dest.network(), r.dest.prefix_len()) != (dest.network(), dest.prefix_len())
        });
        self.routes.len() != before
    }

    /// All routes, longest prefix first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The next hop for `dst`, or `None` when no route covers it.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<NextHop> {
        let route = self.routes.iter().find(|r| r.dest.contains(dst))?;
        Some(match route.via {
            None => NextHop {
                addr: dst,
                on_link: true,
            },
            Some(gw) => NextHop {
                addr: gw,
                on_link: false,
            },
        })
    }
}

#[cfg(test)]
mod tests;
