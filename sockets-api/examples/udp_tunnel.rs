//! A device of your own: two ustack stacks in two processes that carry
//! their IP packets over a kernel UDP socket on 127.0.0.1 (a tiny userspace
//! tunnel), with a TCP connection between them. No TAP, no TUN, no root.
//!
//! The parent runs an echo server at 10.77.0.1 and starts itself again as
//! the child, a client at 10.77.0.2 that sends 4 MiB through the tunnel and
//! checks that every byte comes back.
//!
//! Run with `cargo run -p ustack-sockets --example udp_tunnel`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::process::Command;
use std::time::{Duration, Instant};

use sockets_api::{Device, FrameSink, Medium, StackBuilder, TcpListener, TcpStream};

/// Bytes the child sends and expects back.
const BYTES: usize = 4 << 20;

/// One end of the tunnel: every datagram is one IPv4 packet.
struct UdpDevice {
    sock: UdpSocket,
    /// The other end; the server learns it from the first packet.
    peer: Option<SocketAddr>,
}

impl UdpDevice {
    fn new(peer: Option<SocketAddr>) -> io::Result<UdpDevice> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_nonblocking(true)?;
        Ok(UdpDevice { sock, peer })
    }
}

impl FrameSink for UdpDevice {
    /// Bare IP packets: no Ethernet header, no ARP.
    fn medium(&self) -> Medium {
        Medium::Ip
    }

    fn send(&mut self, _now: Instant, packet: &[u8]) -> io::Result<()> {
        let Some(peer) = self.peer else {
            return Ok(()); // nobody to send to yet: lost, as on a wire
        };
        match self.sock.send_to(packet, peer) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()), // a full queue drops
            other => other.map(drop),
        }
    }
}

impl Device for UdpDevice {
    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.sock.recv_from(buf) {
            Ok((n, from)) => {
                self.peer.get_or_insert(from);
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The largest IP packet the stack builds: kept under 1500 so that the
    /// datagrams need no fragmenting even on a real network.
    fn mtu(&self) -> usize {
        1400
    }

    fn max_frame_len(&self) -> usize {
        65_535
    }

    /// The stack thread sleeps in epoll on this until a packet arrives.
    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.sock.as_raw_fd())
    }
}

fn byte(i: usize) -> u8 {
    (i * 7 + i / 4096) as u8
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, port] = &args[..]
        && role == "client"
    {
        return client(port.parse()?);
    }
    server()
}

fn server() -> Result<(), Box<dyn std::error::Error>> {
    let dev = UdpDevice::new(None)?;
    let port = dev.sock.local_addr()?.port();
    let stack = StackBuilder::device(dev)
        .addr("10.77.0.1/24".parse()?)
        .start()?;
    let listener = TcpListener::bind(&stack, "0.0.0.0:7")?;
    println!("server: ustack at 10.77.0.1, tunnel on udp 127.0.0.1:{port}");
    let mut child = Command::new(std::env::current_exe()?)
        .args(["client", &port.to_string()])
        .spawn()?;
    let (mut conn, peer) = listener.accept()?;
    println!("server: connection from {peer}");
    let mut buf = vec![0u8; 64 * 1024];
    let mut echoed = 0;
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        conn.write_all(&buf[..n])?;
        echoed += n;
    }
    drop(conn);
    println!("server: echoed {echoed} bytes");
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("the client failed: {status}").into());
    }
    Ok(())
}

fn client(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let dev = UdpDevice::new(Some(SocketAddr::from(([127, 0, 0, 1], port))))?;
    let stack = StackBuilder::device(dev)
        .addr("10.77.0.2/24".parse()?)
        .start()?;
    let stream = TcpStream::connect(&stack, "10.77.0.1:7")?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let data: Vec<u8> = (0..BYTES).map(byte).collect();
        writer.write_all(&data)?;
        writer.shutdown(Shutdown::Write)
    });
    let started = Instant::now();
    let mut got = Vec::with_capacity(BYTES);
    (&stream).read_to_end(&mut got)?;
    sender.join().map_err(|_| "the sender panicked")??;
    let wrong = got
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b != byte(i))
        .count();
    if got.len() != BYTES || wrong != 0 {
        return Err(format!("{} of {BYTES} bytes back, {wrong} wrong", got.len()).into());
    }
    println!(
        "client: {BYTES} bytes echoed byte-exact through the UDP tunnel in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
