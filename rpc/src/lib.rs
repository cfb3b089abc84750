//! RPC (framing, marshalling, stubs, binding) and two-phase commit over any
//! byte stream, such as ustack sockets or `std::net`.
//!
//! # Layers
//!
//! - [`frame`]: length-prefixed frames (`u32` BE length, version byte, payload)
//!   with a streaming, allocation-bounded decoder.
//! - [`message`]: the [`Request`] / [`Response`] envelopes, marshalled with
//!   serde + postcard.
//! - [`service!`]: the stub generator (server trait, server stub, client stub,
//!   marshalled calls for non-blocking use).
//! - [`ClientCore`] and [`ServerCore`]: sans-IO client and server (deadlines,
//!   retries with the same request id, at-most-once reply cache).
//! - [`blocking`]: thread-based drivers over any [`blocking::Transport`]
//!   (`std::net::TcpStream`, ustack's `TcpStream`).
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
//! duplicate (see [`ReplyCache`]). The table is kept in memory, so a server
//! that restarts can execute a retried request again; services that must
//! survive restarts make their operations idempotent or, like [`twopc`], log
//! them durably.

pub mod binding;
pub mod blocking;
pub mod client;
mod error;
pub mod frame;
pub mod message;
pub mod server;
mod service;
pub mod twopc;

pub use client::{CallId, ClientConfig, ClientCore, ClientEvent};
pub use error::{RemoteError, RpcError};
pub use message::{Request, Response};
pub use server::{Admission, ConnId, ReplyCache, ServerConfig, ServerCore, ServerStats};
#[doc(hidden)]
pub use service::__private;
pub use service::{CallContext, Caller, Dispatch, Prepared, ReplyDecoder, method_id};
