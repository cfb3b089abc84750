//! RPC (framing, marshalling, stubs, binding) and two-phase commit over any
//! byte stream, such as ustack sockets or `std::net`.
//!
//! # Layers
//!
//! - [`frame`]: length-prefixed frames (`u32` BE length, version byte 2, payload)
//!   with a streaming, allocation-bounded decoder.
//! - [`message`]: the [`Request`] / [`Response`] envelopes, marshalled with
//!   serde + postcard.
//! - [`service!`]: the stub generator (server trait, server stub, client stub,
//!   marshalled calls for non-blocking use).
//! - [`ClientCore`] and [`ServerCore`]: sans-IO client and server (deadlines,
//!   retries with the same request id, at-most-once reply cache).
//! - [`blocking`]: thread-based drivers over any [`blocking::Transport`]
//!   (`std::net::TcpStream`, ustack's `TcpStream`).
//! - [`auth`]: mutual authentication of connections with a shared key or
//!   per-node keys (HMAC-SHA-256 challenge-response in the greeting), then
//!   an HMAC-SHA-256 tag on every frame.
//! - [`binding`]: a name service with leases (dynamic binding).
//! - [`twopc`]: two-phase commit coordinator and participant state machines,
//!   write-ahead logs, recovery, and a bank resource manager.
//!
//! # Sans-IO
//!
//! As in the rest of ustack, the cores never read the clock, sleep, spawn
//! threads or touch a socket: time comes in as `now: Instant`, bytes come in
//! through `handle_*` and go out through `poll_*`, and each core says when it
//! next needs attention (`poll_timeout`). Randomness (client ids) is passed
//! in. The same code therefore runs in ustack's single-threaded simulator
//! under a virtual clock and, through [`blocking`], over real sockets.
//!
//! # Failure semantics
//!
//! Calls are *at most once*: the client retries with the same
//! `(client_id, request_id)` and the server replays its cached reply for a
//! duplicate (see [`ReplyCache`]). The table is kept in memory; what it
//! forgets in a restart is covered by the server's *incarnation*, a random
//! number drawn at each start and sent as the first frame of every
//! connection. A retry that reaches a different incarnation than its first
//! copy did is refused, and the caller gets [`RpcError::Restarted`] ("may
//! have executed, at most once") instead of a second execution. Services
//! whose callers must learn the outcome across a restart keep it in durable
//! state the caller can ask about, as [`twopc`] does with its transactions.

#![warn(missing_docs)]

pub mod auth;
pub mod binding;
pub mod blocking;
pub mod client;
mod error;
pub mod frame;
pub mod message;
pub mod server;
mod service;
pub mod twopc;

pub use auth::{AuthKey, ClientAuth, ServerAuth, ServerKeys};
pub use client::{CallId, ClientConfig, ClientCore, ClientEvent, ClientStats};
pub use error::{RemoteError, RpcError};
pub use message::{Authenticate, Request, Response, ServerMessage};
pub use server::{Admission, ConnId, ReplyCache, ServerConfig, ServerCore, ServerStats};
#[doc(hidden)]
pub use service::__private;
pub use service::{CallContext, Caller, Dispatch, Prepared, ReplyDecoder, method_id};

/// A random 64-bit number for a client id or a server incarnation, from
/// std's per-process random hash keys mixed with the time, the process id
/// and a counter. Sans-IO code takes such numbers as arguments; drivers and
/// `Default` impls call this.
pub fn random_id() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.write_u32(std::process::id());
    h.finish()
}
