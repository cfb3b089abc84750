//! RPC (framing, marshalling, stubs, binding) and two-phase commit over any byte stream, such as ustack sockets.
