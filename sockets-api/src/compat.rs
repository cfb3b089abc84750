//! TEMPORARY shims until the stack's new calls land (removed at merge).
#![allow(dead_code, unused_variables)]
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use stack::{Interface, ListenerHandle, SocketError, TcpHandle, UdpHandle};

pub(crate) trait IfaceCompat {
    fn tcp_connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local: Option<SocketAddrV4>,
        cfg: tcp::TcpConfig,
    ) -> Result<TcpHandle, SocketError>;
    fn tcp_listen_with(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
        reuseport: bool,
    ) -> Result<ListenerHandle, SocketError>;
    fn udp_bind_with(&mut self, local: SocketAddrV4, reuse: bool)
    -> Result<UdpHandle, SocketError>;
    fn tcp_port_in_use(&self, port: u16) -> bool;
}

impl IfaceCompat for Interface {
    fn tcp_connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local: Option<SocketAddrV4>,
        cfg: tcp::TcpConfig,
    ) -> Result<TcpHandle, SocketError> {
        self.tcp_connect(now, remote, local)
    }
    fn tcp_listen_with(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
        reuseport: bool,
    ) -> Result<ListenerHandle, SocketError> {
        self.tcp_listen(local, backlog)
    }
    fn udp_bind_with(
        &mut self,
        local: SocketAddrV4,
        reuse: bool,
    ) -> Result<UdpHandle, SocketError> {
        self.udp_bind(local)
    }
    fn tcp_port_in_use(&self, port: u16) -> bool {
        false
    }
}

pub(crate) trait ListenerCompat {
    fn set_defer_accept(&mut self, t: Option<Duration>);
}
impl ListenerCompat for stack::TcpListener {
    fn set_defer_accept(&mut self, t: Option<Duration>) {}
}

pub(crate) trait ConnCompat {
    fn set_cork(&mut self, now: Instant, on: bool);
    fn set_quickack(&mut self, now: Instant, on: bool);
    fn set_user_timeout(&mut self, t: Option<Duration>);
    fn set_tos(&mut self, tos: u8);
    fn mss(&self) -> u16;
}
impl ConnCompat for tcp::Connection {
    fn set_cork(&mut self, now: Instant, on: bool) {}
    fn set_quickack(&mut self, now: Instant, on: bool) {}
    fn set_user_timeout(&mut self, t: Option<Duration>) {}
    fn set_tos(&mut self, tos: u8) {}
    fn mss(&self) -> u16 {
        self.config().mss
    }
}

pub(crate) trait UdpCompat {
    fn set_tos(&mut self, tos: u8);
}
impl UdpCompat for stack::UdpSocket {
    fn set_tos(&mut self, tos: u8) {}
}
