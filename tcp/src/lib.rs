//! TCP (RFC 9293) for ustack: segments and options, sequence arithmetic, the
//! connection state machine with windows, retransmission (RFC 6298), SACK
//! (RFC 2018, RFC 6675), timestamps and window scaling (RFC 7323), RFC 5961
//! protections, RFC 6528 initial sequence numbers, and congestion control
//! (NewReno, CUBIC).
//!
//! Sans-IO: a [`Connection`] is driven by [`Connection::handle_segment`]
//! (input), [`Connection::poll_transmit`] (output) and
//! [`Connection::poll_at`] (when it next needs attention); every call takes
//! the current time. It never reads a clock, sleeps or performs I/O.

#![warn(missing_docs)]

mod buffer;
pub mod cc;
mod config;
mod conn;
pub mod hystart;
mod isn;
mod rack;
pub mod rate;
mod rtt;
pub mod sack;
mod segment;
mod seq;
mod stats;
pub mod syncookie;
#[cfg(test)]
mod test_rng;
mod timewait;

pub use buffer::{
    Assembler, CHUNK_OVERHEAD, InsertError, MIN_RING, MemoryPressure, PRESSURE_OOO, PRESSURE_RING,
    RecvBuffer, SendBuffer,
};
pub use config::{Keepalive, LossDetection, TcpConfig};
pub use conn::{
    Alarms, Connection, INITIAL_QUANTUM_SEGMENTS, Input, PACING_GRANULARITY, PACING_HORIZON,
    QUICKACK_SEGMENTS, State, TcpError,
};
pub use isn::IsnGenerator;
pub use rtt::RttEstimator;
pub use segment::{Flags, MAX_SACK_BLOCKS, SegmentError, TcpOptions, TcpRepr, fill_checksum};
pub use seq::SeqNum;
pub use stats::TcpStats;
pub use timewait::{TimeWait, TimeWaitInput};

/// The reset to send in reply to a segment that belongs to no connection
/// (RFC 9293 3.10.7.1), or `None` when the segment is itself a reset
/// ("An incoming segment containing a RST is discarded").
pub fn reset_for(seg: &TcpRepr, payload_len: usize) -> Option<TcpRepr> {
    if seg.flags.rst() {
        return None;
    }
    let mut rst = TcpRepr {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        seq: SeqNum(0),
        ack: SeqNum(0),
        flags: Flags(Flags::RST),
        window: 0,
        options: TcpOptions::default(),
        urgent: 0,
    };
    if seg.flags.ack() {
        // "If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>"
        rst.seq = seg.ack;
    } else {
        // "If the ACK bit is off, sequence number zero is used,
        // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>"
        rst.ack = seg.seq + seg.seq_len(payload_len);
        rst.flags = Flags(Flags::RST | Flags::ACK);
    }
    Some(rst)
}
