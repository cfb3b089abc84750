//! TCP (RFC 9293) for ustack: segments, options, sequence arithmetic, the connection state machine, buffers, RTT/RTO and congestion control.
