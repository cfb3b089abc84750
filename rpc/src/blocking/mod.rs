//! Blocking drivers: the sans-IO cores run by threads over a [`Transport`].
//!
//! - [`Client`]: one connection (re-established on demand through a connector
//!   closure) shared by any number of calling threads; a background I/O
//!   thread reads replies and hands each to the thread waiting for it.
//! - [`serve`]: accepts connections and runs a thread per connection; the
//!   service and the at-most-once table are shared by all of them.
//! - [`InProcess`]: a [`crate::Caller`] that dispatches directly to a
//!   local service (no network) — location transparency for tests and demos.

mod client;
mod server;

pub use client::Client;
pub use server::{SharedServer, serve, serve_connection};

use crate::error::RpcError;
use crate::service::{CallContext, Caller, Dispatch};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the blocking drivers need from a byte stream beyond `Read + Write`.
///
/// Implemented for `std::net::TcpStream` and for ustack's
/// [`sockets_api::TcpStream`].
pub trait Transport: Read + Write + Send + Sized + 'static {
    /// Bounds how long `read` may block (`None`: forever). A read that times
    /// out fails with `WouldBlock` or `TimedOut`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Bounds how long `write` may block without progress (`None`:
    /// forever). The default does nothing (writes may block forever).
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }
    /// A second handle to the same stream (one thread reads, others write).
    fn try_clone(&self) -> io::Result<Self>;
    /// Shuts both directions down so that a thread blocked in `read` wakes up.
    fn shutdown(&self) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }

    fn shutdown(&self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Both)
    }
}

impl Transport for sockets_api::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        sockets_api::TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        sockets_api::TcpStream::set_write_timeout(self, timeout)
    }

    fn try_clone(&self) -> io::Result<Self> {
        sockets_api::TcpStream::try_clone(self)
    }

    fn shutdown(&self) -> io::Result<()> {
        sockets_api::TcpStream::shutdown(self, Shutdown::Both)
    }
}

/// A [`Caller`] that runs calls on a local service, in the calling thread
/// (reading the wall clock for the [`CallContext`]).
#[derive(Debug, Default)]
pub struct InProcess<D> {
    service: Mutex<D>,
}

impl<D: Dispatch> InProcess<D> {
    /// Wraps a service.
    pub fn new(service: D) -> Self {
        InProcess {
            service: Mutex::new(service),
        }
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> D {
        match self.service.into_inner() {
            Ok(d) => d,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl<D: Dispatch> Caller for InProcess<D> {
    fn call(&self, method: u32, args: Vec<u8>) -> Result<Vec<u8>, RpcError> {
        let ctx = CallContext {
            now: Instant::now(),
            client_id: 0,
            request_id: 0,
            deadline: None,
            peer: None,
        };
        let mut service = self.service.lock().map_err(|_| RpcError::Closed)?;
        service
            .dispatch(&ctx, method, &args)
            .map_err(RpcError::Remote)
    }
}

/// True for the errors a read with a timeout returns when it just timed out.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests;
