//! TCP applications for the simulation: a sink server that accepts any
//! number of connections and checks the bytes, a source client that writes a
//! stream and closes, and an echo server.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use stack::{Interface, ListenerHandle, SocketError, TcpHandle};

use super::host::{App, HostCtx};

/// Byte `i` of the test stream: a hash of the offset, so a byte that lands
/// at the wrong place (reordering, duplication, a bad retransmission) is
/// caught, unlike with a short repeating pattern.
pub fn stream_byte(i: u64) -> u8 {
    (i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

/// Fills `buf` with the stream from offset `start`.
pub fn fill_stream(start: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = stream_byte(start + k as u64);
    }
}

/// One connection as the sink saw it.
#[derive(Clone, Debug, Default)]
pub struct SinkConn {
    /// Bytes received.
    pub bytes: u64,
    /// Bytes that did not match the stream (must stay 0).
    pub mismatches: u64,
    /// The peer closed (end of stream read).
    pub eof: bool,
    /// The connection failed with this error.
    pub error: Option<SocketError>,
    /// When the end of stream was read.
    pub finished_at: Option<Instant>,
}

/// A server that accepts connections on a port and reads everything,
/// checking it against [`stream_byte`] when `verify` is set.
pub struct TcpSink {
    listener: ListenerHandle,
    conns: Vec<(TcpHandle, usize)>,
    /// Per accepted connection, in accept order.
    pub results: Vec<SinkConn>,
    verify: bool,
    /// While set, the sink does not read (to let windows fill).
    pub paused: bool,
    buf: Vec<u8>,
}

impl TcpSink {
    /// Listens on `port` with `backlog`.
    pub fn listen(
        iface: &mut Interface,
        port: u16,
        backlog: usize,
        verify: bool,
    ) -> Result<TcpSink, SocketError> {
        let listener = iface.tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), backlog)?;
        Ok(TcpSink {
            listener,
            conns: Vec::new(),
            results: Vec::new(),
            verify,
            paused: false,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// The listener.
    pub fn listener(&self) -> ListenerHandle {
        self.listener
    }

    /// Total bytes received over all connections.
    pub fn total(&self) -> u64 {
        self.results.iter().map(|r| r.bytes).sum()
    }

    /// Connections whose stream ended cleanly.
    pub fn finished(&self) -> usize {
        self.results.iter().filter(|r| r.eof).count()
    }
}

impl App for TcpSink {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        while let Ok(h) = cx.iface.tcp_accept(self.listener) {
            self.conns.push((h, self.results.len()));
            self.results.push(SinkConn::default());
        }
        if self.paused {
            return;
        }
        let mut done = Vec::new();
        for (i, &(h, idx)) in self.conns.iter().enumerate() {
            let r = &mut self.results[idx];
            loop {
                match cx.iface.tcp_recv(h, &mut self.buf) {
                    Ok(0) => {
                        r.eof = true;
                        r.finished_at = Some(cx.now);
                        done.push(i);
                        break;
                    }
                    Ok(n) => {
                        if self.verify {
                            for (k, &b) in self.buf[..n].iter().enumerate() {
                                if b != stream_byte(r.bytes + k as u64) {
                                    r.mismatches += 1;
                                }
                            }
                        }
                        r.bytes += n as u64;
                    }
                    Err(SocketError::WouldBlock) => break,
                    Err(e) => {
                        r.error = Some(e);
                        done.push(i);
                        break;
                    }
                }
            }
        }
        for i in done.into_iter().rev() {
            let (h, _) = self.conns.swap_remove(i);
            cx.iface.tcp_close(cx.now, h);
        }
    }
}

/// A client that connects, writes `total` bytes of the stream, then closes
/// (half-close) and waits for the peer's FIN.
pub struct TcpSource {
    handle: TcpHandle,
    total: u64,
    /// Bytes accepted by the socket so far.
    pub written: u64,
    /// The write side was closed.
    pub shut: bool,
    /// The peer's end of stream arrived after our close.
    pub done: bool,
    /// The connection failed.
    pub error: Option<SocketError>,
    buf: Vec<u8>,
}

impl TcpSource {
    /// Connects from `iface` to `dst`.
    pub fn connect(
        iface: &mut Interface,
        now: Instant,
        dst: SocketAddrV4,
        total: u64,
    ) -> Result<TcpSource, SocketError> {
        let handle = iface.tcp_connect(now, dst, None)?;
        Ok(TcpSource {
            handle,
            total,
            written: 0,
            shut: false,
            done: false,
            error: None,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// The connection.
    pub fn handle(&self) -> TcpHandle {
        self.handle
    }
}

impl App for TcpSource {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        if self.done || self.error.is_some() {
            return;
        }
        let Some(conn) = cx.iface.tcp(self.handle) else {
            return;
        };
        if let Some(e) = conn.error() {
            self.error = Some(e.into());
            return;
        }
        if !conn.is_established() {
            return;
        }
        while self.written < self.total {
            // Generate only what the socket can take now.
            let room = cx.iface.tcp(self.handle).map_or(0, |c| c.send_capacity());
            if room == 0 {
                break;
            }
            let n = ((self.total - self.written) as usize)
                .min(self.buf.len())
                .min(room);
            fill_stream(self.written, &mut self.buf[..n]);
            match cx.iface.tcp_send(self.handle, &self.buf[..n]) {
                Ok(k) => self.written += k as u64,
                Err(SocketError::WouldBlock) => break,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        if self.written == self.total && !self.shut {
            self.shut = cx.iface.tcp_shutdown(self.handle, false, true).is_ok();
        }
        if self.shut {
            let mut b = [0u8; 1024];
            match cx.iface.tcp_recv(self.handle, &mut b) {
                Ok(0) => {
                    self.done = true;
                    cx.iface.tcp_close(cx.now, self.handle);
                }
                Ok(_) | Err(SocketError::WouldBlock) => {}
                Err(e) => self.error = Some(e),
            }
        }
    }
}

/// An echo server (RFC 862) for any number of connections.
pub struct TcpEchoServer {
    listener: ListenerHandle,
    conns: Vec<(TcpHandle, Vec<u8>, bool)>,
    /// Bytes echoed.
    pub echoed: u64,
    /// Connections accepted.
    pub accepted: u64,
    buf: Vec<u8>,
}

impl TcpEchoServer {
    /// Listens on `port`.
    pub fn listen(iface: &mut Interface, port: u16, backlog: usize) -> Result<Self, SocketError> {
        let listener = iface.tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), backlog)?;
        Ok(TcpEchoServer {
            listener,
            conns: Vec::new(),
            echoed: 0,
            accepted: 0,
            buf: vec![0u8; 64 * 1024],
        })
    }
}

impl App for TcpEchoServer {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        while let Ok(h) = cx.iface.tcp_accept(self.listener) {
            self.accepted += 1;
            self.conns.push((h, Vec::new(), false));
        }
        let mut done = Vec::new();
        for (i, (h, pending, eof)) in self.conns.iter_mut().enumerate() {
            loop {
                // Flush what could not be written before reading more.
                while !pending.is_empty() {
                    match cx.iface.tcp_send(*h, pending) {
                        Ok(n) => {
                            self.echoed += n as u64;
                            pending.drain(..n);
                        }
                        Err(_) => break,
                    }
                }
                if !pending.is_empty() || *eof {
                    break;
                }
                match cx.iface.tcp_recv(*h, &mut self.buf) {
                    Ok(0) => {
                        *eof = true;
                        break;
                    }
                    Ok(n) => pending.extend_from_slice(&self.buf[..n]),
                    Err(SocketError::WouldBlock) => break,
                    Err(_) => {
                        done.push(i);
                        break;
                    }
                }
            }
            if *eof && pending.is_empty() {
                done.push(i);
            }
        }
        done.sort_unstable();
        done.dedup();
        for i in done.into_iter().rev() {
            let (h, _, _) = self.conns.swap_remove(i);
            cx.iface.tcp_close(cx.now, h);
        }
    }
}
