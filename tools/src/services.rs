//! The services `ustack serve` runs on the interface.

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use stack::{FrameSink, Interface, SocketError, UdpHandle};

use crate::cli::ServeArgs;

/// UDP echo (RFC 862): every datagram goes back to its sender.
struct UdpEcho {
    port: u16,
    handle: UdpHandle,
}

/// All services of one `ustack serve`.
pub struct Services {
    udp_echo: Vec<UdpEcho>,
    buf: Vec<u8>,
}

impl Services {
    /// Opens the sockets the command line asks for.
    pub fn start(iface: &mut Interface, args: &ServeArgs) -> Result<Services, Box<dyn Error>> {
        let mut udp_echo = Vec::new();
        for &port in &args.udp_echo {
            let handle = iface
                .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
                .map_err(|e| format!("UDP echo on port {port}: {e}"))?;
            udp_echo.push(UdpEcho { port, handle });
        }
        Ok(Services {
            udp_echo,
            buf: vec![0u8; 65_536],
        })
    }

    /// One line per running service.
    pub fn describe(&self) -> Vec<String> {
        self.udp_echo
            .iter()
            .map(|e| format!("UDP echo on port {}", e.port))
            .collect()
    }

    /// Serves whatever arrived.
    pub fn poll<S: FrameSink + ?Sized>(&mut self, iface: &mut Interface, now: Instant, tx: &mut S) {
        for echo in &self.udp_echo {
            loop {
                match iface.udp_recv_from(echo.handle, &mut self.buf) {
                    Ok((n, from)) => {
                        let n = n.min(self.buf.len());
                        if let Err(e) =
                            iface.udp_send_to(now, echo.handle, &self.buf[..n], Some(from), tx)
                        {
                            log::debug!("UDP echo to {from}: {e}");
                        }
                    }
                    Err(SocketError::WouldBlock) => break,
                    Err(e) => {
                        log::debug!("UDP echo: {e}");
                        break;
                    }
                }
            }
        }
    }
}
