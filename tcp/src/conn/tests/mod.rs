//! Unit tests of the connection: two connections wired back to back (no
//! IP) under a virtual clock (the harness in `wire.rs`), tests by topic.

use std::time::Duration;

use super::*;

mod wire;
use wire::*;

mod autotune;
mod close;
mod cookies;
mod data;
mod handshake;
mod pacing;
mod protection;
mod rack;
mod rate;
mod recovery;
mod timers;
mod urgent_cork;
