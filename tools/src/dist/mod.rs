//! `ustack rpc ...` and `ustack 2pc ...`: a name service and a two-phase
//! commit bank, each node its own ustack process on its own TAP device,
//! talking RPC over ustack TCP.
//!
//! Every command takes the shared stack flags (`--tap NAME --addr A.B.C.D/LEN
//! [--mac MAC] [--gateway ..] [--loss P] ...`, see `ustack serve`). Give each
//! long-lived node a fixed `--mac`, so that peers' ARP caches stay right
//! when it restarts. `--names A.B.C.D:PORT` is where the name service
//! listens. `--key-file PATH` is the system's shared key, made once by
//! `ustack 2pc keygen`: every connection proves it (mutually, see
//! `rpc::auth`) before any call runs, and every frame after that carries a
//! MAC. `--keys FILE` instead gives per-node keys, one `ID HEXKEY` line
//! each (`#` comments and blank lines allowed): a process proves the key of
//! its own id (the command-line clients: id 18446744073709551615, `u64::MAX`)
//! and its server checks each client against the key of the id the client
//! claims, so that a node holding only its own key cannot pass for another.
//! Every command below needs one of the two; a key file that its group or
//! others may read is refused, as ssh refuses such private keys.
//!
//! ```text
//! ustack 2pc keygen --key-file PATH
//! ustack rpc names  STACK --listen PORT [--min-lease-ms MS] [--max-lease-ms MS]
//! ustack rpc lookup STACK --names A.B.C.D:P NAME
//!
//! ustack 2pc participant STACK --id N --names A.B.C.D:P --listen PORT --log DIR
//!            --accounts NAME=BALANCE,... [--name bank-N] [--max-log-bytes N]
//!            [--testing [--crash-at POINT[:K]]]
//! ustack 2pc coordinator STACK --id N --names A.B.C.D:P --listen PORT --log DIR
//!            [--name coordinator] [--vote-timeout-ms MS] [--max-log-bytes N]
//!            [--testing [--crash-at POINT[:K]]]
//! ustack 2pc transfer STACK --names A.B.C.D:P --from bank-1:alice --to bank-2:bob
//!            --amount 30 [--coordinator NAME] [--timeout SECS]
//! ustack 2pc status   STACK --names A.B.C.D:P --node NAME...
//! ustack 2pc check    STACK --names A.B.C.D:P --node NAME... [--expect-total N]
//!            [--reported FILE] [--settle SECS]
//! ustack 2pc crash    STACK --names A.B.C.D:P --node NAME --at POINT[:K]
//! ustack 2pc attack   STACK --names A.B.C.D:P [--key-file WRONG [--claim ID]]
//!            --node A.B.C.D:P|NAME... [--flood N]
//! ```
//!
//! - `2pc keygen` writes a new random key (32 bytes from the operating
//!   system, hexadecimal) to a new file of mode 0600; it never overwrites.
//! - `rpc names` serves the name service (a lease registry): servers
//!   register `name -> address` and renew; a crashed server's entry expires.
//! - `2pc participant` is a bank (resource manager) with node id N. It
//!   recovers from its write-ahead log `DIR/2pc.wal` on start (a new log
//!   begins with a checkpoint of `--accounts`; later starts take the
//!   accounts from the log), serves the 2PC peer interface and a control
//!   interface on `--listen`, and registers (lease renewed every third of
//!   `--lease-ms`) under `node-N` (peers find each other by id) and under
//!   `--name` (default `bank-N`).
//! - `2pc coordinator` is the coordinator with node id N, registered under
//!   `node-N` and `--name` (default `coordinator`). On restart it aborts every
//!   transaction it logged as begun but not decided, and re-sends every
//!   decision not yet acknowledged.
//! - `2pc transfer` asks the coordinator (looked up by name) to move
//!   `--amount` from one account to another (`bank-N:ACCOUNT`; both may be at
//!   one bank) and waits for the decision: prints `tx C.S.N COMMIT` (N: the
//!   transaction id's 128 random bits, in hex) or
//!   `tx C.S.N ABORT` and exits 0. An account without the funds, an unknown
//!   account, an account locked by another transfer in flight, or a bank
//!   that does not answer within the vote timeout gives ABORT. No decision
//!   within `--timeout` prints `tx C.S.N UNDECIDED` and exits 1. Calls are at
//!   most once per coordinator incarnation: if the coordinator crashes while
//!   the request is in flight, the retried request may begin a second
//!   transaction (the first, undecided, is aborted by the recovery).
//! - `2pc status` prints each node's accounts and every transaction as that
//!   node recorded it (`WAIT`, `READY`, `BLOCKED`, `COMMIT`, `ABORT`; `~`:
//!   decided at the coordinator but not yet acknowledged by every bank).
//! - `2pc check` waits up to `--settle` seconds for everything to be decided
//!   and acknowledged, prints what `status` prints plus the outcome each
//!   client was told (`--reported`: a file of `transfer` output lines), and
//!   a verdict: money conserved (`--expect-total`), no two nodes (or a node
//!   and a client) disagree on an outcome, nothing undecided or
//!   unacknowledged, no account locked, every transaction known to its
//!   coordinator. Exit 0 only if it holds.
//! - `2pc crash` arms a crash point at a running node; `--crash-at` (or the
//!   environment variable `USTACK_2PC_CRASH_AT`) arms one at start. These
//!   test hooks exist only at a node started with `--testing`: without it
//!   `--crash-at` and the variable are usage errors, and the `crash_at`
//!   call is refused and counted (`status` shows `crash_at_refused`). The
//!   node calls `abort()` the K-th time (default 1) it reaches the point:
//!   - `begin-logged` (coordinator): BEGIN durable, no VOTE-REQUEST sent;
//!   - `ready-logged` (bank): READY durable, vote not sent;
//!   - `before-commit`: coordinator: every vote was COMMIT, the decision is
//!     not logged (every bank READY and in doubt); bank: GLOBAL-COMMIT
//!     received, not logged;
//!   - `commit-logged`: coordinator: COMMIT durable, not sent; bank: COMMIT
//!     durable and applied, ACK not sent;
//!   - `before-end` (coordinator): every ACK in, END not logged.
//!
//! - `2pc attack` plays a host without the key (see `attack.rs`): forged
//!   Prepare and Decision messages to each node, `crash_at`, lease
//!   renewals and withdrawals with guessed tokens, and a flood of
//!   connections; one line per kind of attempt with how many were refused;
//!   exit 0 only if all were.
//!
//! Logs stay bounded: once a node's log passes `--max-log-bytes` (default
//! 64 KiB) it is compacted to a checkpoint (see `rpc::twopc`, "Bounded
//! logs"): the coordinator keeps the transactions not yet ended plus the
//! last 256 ended ones, a bank its balances and the transactions not yet
//! covered by an end-of-transaction notice. `status` prints each node's
//! counters since it started: log bytes, compactions, transactions
//! remembered, messages refused by the sender rule (`refused`) or for a
//! forged sender (`forged`), dropped for a full table (`full_refused`,
//! `begins_refused`) or a full send queue (`dropped_sends`), and
//! `crash_at_refused`.
//!
//! A node prints `recovered: records=R in_doubt=D [...] unacknowledged=U [...]`
//! when it starts: D counts transactions it crashed in the middle of,
//! between prepare and commit (coordinator: begun, undecided; bank: READY,
//! no outcome). `scripts/demo-2pc` runs the whole system in a network
//! namespace with random crashes and checks the verdict.

mod attack;
mod client;
mod control;
mod crash;
mod net;
mod node;
mod verdict;

use std::error::Error;
use std::net::SocketAddrV4;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use rpc::twopc::NodeId;

use crate::args::StackArgs;
use crash::CrashSpec;

#[derive(Args, Debug)]
pub struct RpcArgs {
    #[command(subcommand)]
    pub command: RpcCommand,
}

#[derive(Subcommand, Debug)]
pub enum RpcCommand {
    /// Serve the name service (a registry of leases) on a port.
    Names(NamesArgs),
    /// Print every live address registered under a name.
    Lookup(LookupArgs),
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// TCP port to serve on.
    #[arg(long, value_name = "PORT")]
    pub listen: u16,
    /// Shortest lease accepted.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub min_lease_ms: u64,
    /// Longest lease accepted.
    #[arg(long, value_name = "MS", default_value_t = 3_600_000)]
    pub max_lease_ms: u64,
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Flags of the commands that are clients of the system.
#[derive(Args, Debug)]
pub struct ClientArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// The name service.
    #[arg(long, value_name = "A.B.C.D:PORT")]
    pub names: SocketAddrV4,
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Args, Debug)]
pub struct LookupArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The name to look up.
    pub name: String,
}

#[derive(Args, Debug)]
pub struct TwoPcArgs {
    #[command(subcommand)]
    pub command: TwoPcCommand,
}

#[derive(Subcommand, Debug)]
pub enum TwoPcCommand {
    /// Run a bank: a 2PC participant with accounts and a durable log.
    Participant(ParticipantArgs),
    /// Run the 2PC coordinator, with a durable log.
    Coordinator(CoordinatorArgs),
    /// Transfer money between accounts (at one or two banks) through the coordinator.
    Transfer(TransferArgs),
    /// Print nodes' accounts and every transaction as each recorded it.
    Status(StatusArgs),
    /// Like status, after waiting for quiescence, plus a consistency verdict.
    Check(CheckArgs),
    /// Make a running node crash (abort) at a protocol step (the node must
    /// run with --testing).
    Crash(CrashArgs),
    /// Write a new shared key for the system's --key-file (never overwrites).
    Keygen(KeygenArgs),
    /// From a host without the key: try forged messages, lease hijacks,
    /// crash_at and a flood; exit 0 only if every attempt was refused.
    Attack(attack::AttackArgs),
}

/// Where a process finds its key: one shared by the system, or a key ring
/// of per-node keys (exactly one of the two).
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct KeyArgs {
    /// The system's shared key (from `ustack 2pc keygen`).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Per-node keys: lines `ID HEXKEY` (mode 0600). This process proves
    /// the key of its own id, and its server wants each client to prove
    /// the key of the id it claims.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// The key file to create (mode 0600).
    #[arg(long, value_name = "PATH")]
    pub key_file: PathBuf,
}

/// Flags of both node roles.
#[derive(Args, Debug)]
pub struct NodeArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// This node's 2PC id (unique in the system; a bank's id is the N of bank-N).
    #[arg(long, value_name = "N")]
    pub id: NodeId,
    /// The name service.
    #[arg(long, value_name = "A.B.C.D:PORT")]
    pub names: SocketAddrV4,
    /// TCP port to serve the 2PC peer and control interfaces on.
    #[arg(long, value_name = "PORT")]
    pub listen: u16,
    /// Directory of the node's write-ahead log (created if missing).
    #[arg(long, value_name = "DIR")]
    pub log: PathBuf,
    /// Abort the process the K-th time it reaches this protocol step
    /// (only with --testing).
    #[arg(long, value_name = "POINT[:K]")]
    pub crash_at: Option<CrashSpec>,
    /// Enable test hooks: --crash-at, USTACK_2PC_CRASH_AT and the control
    /// call `crash_at` (`ustack 2pc crash`). Without it they are refused
    /// (and the calls counted).
    #[arg(long)]
    pub testing: bool,
    /// Compact the log (checkpoint, then rename over the old file) once it
    /// holds more than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1024..))]
    pub max_log_bytes: u64,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Length of the name-service leases (renewed every third).
    #[arg(long, value_name = "MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(100..))]
    pub lease_ms: u64,
}

#[derive(Args, Debug)]
pub struct ParticipantArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Initial accounts of a new log, e.g. alice=100,carol=50.
    #[arg(long, value_name = "NAME=BALANCE,...")]
    pub accounts: String,
    /// Name to register under (default bank-N).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct CoordinatorArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Name to register under.
    #[arg(long, value_name = "NAME", default_value = "coordinator")]
    pub name: String,
    /// Abort a transaction whose votes are not all in after this long.
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub vote_timeout_ms: u64,
}

#[derive(Args, Debug)]
pub struct TransferArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Account to debit, as bank-N:ACCOUNT.
    #[arg(long, value_name = "bank-N:ACCOUNT")]
    pub from: String,
    /// Account to credit, as bank-N:ACCOUNT.
    #[arg(long, value_name = "bank-N:ACCOUNT")]
    pub to: String,
    /// Amount to move.
    #[arg(long, value_name = "N")]
    pub amount: u64,
    /// The coordinator's registered name.
    #[arg(long, value_name = "NAME", default_value = "coordinator")]
    pub coordinator: String,
    /// Give up waiting for the decision after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = seconds)]
    pub timeout: f64,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// A node to ask, by registered name (repeatable), e.g. coordinator, bank-1.
    #[arg(long = "node", value_name = "NAME", required = true)]
    pub nodes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub status: StatusArgs,
    /// The sum every bank's balances must add up to.
    #[arg(long, value_name = "N")]
    pub expect_total: Option<u128>,
    /// File with the lines `ustack 2pc transfer` printed (tx C.S.N OUTCOME).
    #[arg(long, value_name = "FILE")]
    pub reported: Option<PathBuf>,
    /// Wait up to this many seconds for every transaction to settle.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = seconds)]
    pub settle: f64,
}

#[derive(Args, Debug)]
pub struct CrashArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The node, by registered name.
    #[arg(long, value_name = "NAME")]
    pub node: String,
    /// Where: begin-logged, ready-logged, before-commit, commit-logged,
    /// before-end; `:K` for the K-th occurrence.
    #[arg(long, value_name = "POINT[:K]")]
    pub at: CrashSpec,
}

fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if v.is_finite() && (0.0..=86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} s is outside 0..=86400"))
    }
}

pub fn run_rpc(args: RpcArgs) -> Result<(), Box<dyn Error>> {
    match args.command {
        RpcCommand::Names(a) => node::run_names(a),
        RpcCommand::Lookup(a) => client::run_lookup(a),
    }
}

pub fn run_2pc(args: TwoPcArgs) -> Result<(), Box<dyn Error>> {
    match args.command {
        TwoPcCommand::Participant(a) => node::run_participant(a),
        TwoPcCommand::Coordinator(a) => node::run_coordinator(a),
        TwoPcCommand::Transfer(a) => client::run_transfer(a),
        TwoPcCommand::Status(a) => client::run_status(a),
        TwoPcCommand::Check(a) => client::run_check(a),
        TwoPcCommand::Crash(a) => client::run_crash(a),
        TwoPcCommand::Attack(a) => attack::run_attack(a),
        TwoPcCommand::Keygen(a) => {
            rpc::AuthKey::write_new(&a.key_file)?;
            println!("ustack 2pc keygen: new key in {}", a.key_file.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
