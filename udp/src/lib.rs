//! UDP (RFC 768) for ustack: the datagram format with its pseudo-header
//! checksum, the demultiplexing table, a bounded receive queue that does not
//! allocate per datagram, and ephemeral port selection (RFC 6056).
//!
//! Sans-IO: no clocks, no I/O; randomness is passed in.

#![warn(missing_docs)]

mod packet;
mod ports;
mod queue;
mod table;

pub use packet::{UdpError, UdpRepr};
pub use ports::{EPHEMERAL_PORTS, ephemeral_port};
pub use queue::{DATAGRAM_OVERHEAD, RecvQueue};
pub use table::{BindError, UdpTable};
