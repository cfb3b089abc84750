//! `ustack 2pc attack`: what a host without the system's key can do to it.
//!
//! From a host holding a wrong key (`--key-file`) or none, it tries, once
//! per node given with `--node` (an address `A.B.C.D:PORT`, or a name to
//! look up, which the name service refuses without the key):
//!
//! - a forged VOTE-REQUEST (Prepare) and a forged GLOBAL-COMMIT (Decision),
//!   claiming to come from the coordinator (node 0);
//! - arming a crash point (`crash_at`);
//!
//! and at the name service: renewals and withdrawals of leases with guessed
//! tokens, then a flood of `--flood` connections at once, each trying one
//! call. It prints one line per kind of attempt with how many were
//! refused, and exits 0 only if every attempt was refused by the
//! authentication (an attempt that gets no answer at all, retried for
//! 20 s, counts as not refused).

use std::error::Error;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use rpc::binding::NameServiceClient;
use rpc::blocking::Client;
use rpc::twopc::rpc::TwoPcPeerClient;
use rpc::twopc::{Msg, TxId};
use rpc::{ClientAuth, ClientConfig, RpcError};
use sockets_api::Stack;

use super::control::ControlClient;
use super::net::{connect, read_key};
use crate::args::StackArgs;
use crate::start;

#[derive(Args, Debug)]
pub struct AttackArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// The name service.
    #[arg(long, value_name = "A.B.C.D:PORT")]
    pub names: SocketAddrV4,
    /// A key to attack with (a wrong one, or another node's); without it,
    /// no key at all.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// The identity to claim (default 0, the coordinator): with per-node
    /// keys (`--keys` at the nodes), a node's own key does not prove another.
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub claim: u64,
    /// A node to attack: its address, or a registered name (repeatable).
    #[arg(long = "node", value_name = "A.B.C.D:PORT|NAME", required = true)]
    pub nodes: Vec<String>,
    /// Connections opened at once in the flood.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=2000))]
    pub flood: u64,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The greeting's authentication refused it: nothing ran.
    Refused,
    /// The server decoded and answered the call: the attack got through.
    Accepted,
    /// No answer (the connection failed or timed out).
    NoAnswer(String),
}

/// Classifies the result of an attacking call.
pub fn classify<T>(result: Result<T, RpcError>) -> Outcome {
    match result {
        Err(RpcError::Unauthenticated(_)) => Outcome::Refused,
        Ok(_) | Err(RpcError::Remote(_)) => Outcome::Accepted,
        Err(e) => Outcome::NoAnswer(e.to_string()),
    }
}

/// Attempts of one kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Attempts made.
    pub tried: u64,
    /// Refused by authentication.
    pub refused: u64,
    /// Accepted (the attack got through).
    pub accepted: u64,
    /// Why the first attempt without an answer had none.
    pub no_answer: Option<String>,
}

impl Tally {
    fn add(&mut self, o: Outcome) {
        self.tried += 1;
        match o {
            Outcome::Refused => self.refused += 1,
            Outcome::Accepted => self.accepted += 1,
            Outcome::NoAnswer(why) => {
                self.no_answer.get_or_insert(why);
            }
        }
    }

    /// The line printed for this kind of attempt.
    pub fn line(&self, what: &str) -> String {
        let mut s = format!("attack: {what}: {} of {} refused", self.refused, self.tried);
        if self.accepted > 0 {
            s += &format!(", {} ACCEPTED", self.accepted);
        }
        let unanswered = self.tried - self.refused - self.accepted;
        if unanswered > 0 {
            s += &format!(
                ", {unanswered} unanswered ({})",
                self.no_answer.as_deref().unwrap_or("?")
            );
        }
        s
    }
}

/// One attacking client: a fresh connection for every attempt.
fn client(stack: &Stack, addr: SocketAddrV4, auth: &Option<ClientAuth>) -> Client {
    let stack = stack.clone();
    let config = ClientConfig {
        call_timeout: Duration::from_secs(3),
        attempt_timeout: Duration::from_millis(700),
        max_attempts: 3,
        auth: auth.clone(),
        ..ClientConfig::default()
    };
    // Client::new fails only when no thread can be started.
    match Client::new(move || connect(&stack, addr), config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ustack 2pc attack: cannot start a client: {e}");
            std::process::exit(1);
        }
    }
}

/// How long an attempt is repeated while it gets no answer (a node may be
/// restarting).
const PATIENCE: Duration = Duration::from_secs(20);

/// Runs `attempt` until it gets an answer, for at most [`PATIENCE`].
fn try_hard(mut attempt: impl FnMut() -> Outcome) -> Outcome {
    let give_up = Instant::now() + PATIENCE;
    loop {
        let last = attempt();
        if !matches!(last, Outcome::NoAnswer(_)) || Instant::now() >= give_up {
            return last;
        }
        thread::sleep(Duration::from_millis(300));
    }
}

/// `ustack 2pc attack`.
pub fn run_attack(args: AttackArgs) -> Result<(), Box<dyn Error>> {
    // Claim an identity (the coordinator's, node 0, unless told): without
    // its key, the claim is worth nothing.
    let auth = match &args.key_file {
        Some(path) => Some(ClientAuth::new(read_key(path)?, args.claim)),
        None => None,
    };
    let stack = start::start(&args.stack)?;
    let names = args.names;
    let mut total = Tally::default();
    let report = |what: &str, t: Tally, total: &mut Tally| {
        println!("{}", t.line(what));
        total.tried += t.tried;
        total.refused += t.refused;
        total.accepted += t.accepted;
    };

    // The nodes: by address, or looked up (refused without the key).
    let mut lookups = Tally::default();
    let mut targets = Vec::new();
    for node in &args.nodes {
        if let Ok(addr) = node.parse::<SocketAddrV4>() {
            targets.push(addr);
            continue;
        }
        lookups.add(try_hard(|| {
            let ns = NameServiceClient::new(client(&stack, names, &auth));
            let r = ns.lookup(node.clone());
            if let Ok(Ok(addr)) = &r {
                if let Ok(addr) = addr.parse() {
                    targets.push(addr);
                }
            }
            classify(r)
        }));
    }
    if lookups.tried > 0 {
        report("name lookups", lookups, &mut total);
    }

    let mut seq = rpc::random_id();
    let mut forged = |commit: Option<bool>| {
        seq = seq.wrapping_add(1);
        let tx = TxId {
            coordinator: 0,
            seq,
            nonce: rpc::twopc::random_nonce(),
        };
        match commit {
            None => Msg::Prepare {
                tx,
                participants: vec![1, 2, 3],
                work: Vec::new(),
            },
            Some(commit) => Msg::Decision { tx, commit },
        }
    };
    let (mut prepares, mut decisions, mut crashes) =
        (Tally::default(), Tally::default(), Tally::default());
    for &addr in &targets {
        prepares.add(try_hard(|| {
            let peer = TwoPcPeerClient::new(client(&stack, addr, &auth));
            classify(peer.deliver(0, forged(None)))
        }));
        decisions.add(try_hard(|| {
            let peer = TwoPcPeerClient::new(client(&stack, addr, &auth));
            classify(peer.deliver(0, forged(Some(true))))
        }));
        crashes.add(try_hard(|| {
            let control = ControlClient::new(client(&stack, addr, &auth));
            classify(control.crash_at("commit-logged".into()))
        }));
    }
    report("forged Prepare deliveries", prepares, &mut total);
    report("forged Decision (commit) deliveries", decisions, &mut total);
    report("crash_at control calls", crashes, &mut total);

    // Leases: renew and withdraw with guessed tokens.
    let mut leases = Tally::default();
    let mut guesses: Vec<u128> = (1..=5).collect();
    guesses
        .extend((0..5).map(|_| u128::from(rpc::random_id()) << 64 | u128::from(rpc::random_id())));
    for &token in &guesses {
        leases.add(try_hard(|| {
            let ns = NameServiceClient::new(client(&stack, names, &auth));
            classify(ns.unregister(token))
        }));
        leases.add(try_hard(|| {
            let ns = NameServiceClient::new(client(&stack, names, &auth));
            classify(ns.renew(token))
        }));
    }
    report(
        "lease unregister/renew with guessed tokens",
        leases,
        &mut total,
    );

    // The flood: every connection at once, each trying one call.
    let flood: Vec<_> = (0..args.flood)
        .map(|i| {
            let (stack, auth) = (stack.clone(), auth.clone());
            thread::Builder::new()
                .name(format!("attack-{i}"))
                .spawn(move || {
                    try_hard(|| {
                        let ns = NameServiceClient::new(client(&stack, names, &auth));
                        classify(ns.lookup_all("coordinator".into()))
                    })
                })
        })
        .collect();
    let mut flooded = Tally::default();
    for t in flood {
        match t {
            Ok(handle) => flooded.add(
                handle
                    .join()
                    .unwrap_or_else(|_| Outcome::NoAnswer("thread panicked".into())),
            ),
            Err(e) => flooded.add(Outcome::NoAnswer(format!("no thread: {e}"))),
        }
    }
    report(
        &format!("flood of {} unauthenticated connections", args.flood),
        flooded,
        &mut total,
    );

    if total.refused == total.tried {
        println!(
            "attack: every attempt refused ({} of {})",
            total.refused, total.tried
        );
        Ok(())
    } else {
        Err(format!(
            "{} of {} attempts were not refused",
            total.tried - total.refused,
            total.tried
        )
        .into())
    }
}

#[cfg(test)]
mod tests;
