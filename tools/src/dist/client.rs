//! The client commands: `transfer`, `status`, `check`, `crash`, and
//! `ustack rpc lookup`.

use std::collections::BTreeMap;
use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

use rpc::ClientAuth;
use rpc::blocking::Client;
use rpc::twopc::{NodeId, TxId};
use sockets_api::Stack;

use super::control::ControlClient;
use super::net::{
    CLIENT_IDENTITY, Keys, NameResolver, named_client, names_client, quick_config, resolver,
};
use super::verdict::{NodeReport, judge, parse_reported, render, render_verdict, settled};
use super::{CheckArgs, ClientArgs, CrashArgs, LookupArgs, StatusArgs, TransferArgs};
use crate::args::UsageError;
use crate::start;

/// A decided transfer's outcome could not be learnt in time.
#[derive(Debug)]
struct Undecided;

impl std::fmt::Display for Undecided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no decision in time")
    }
}

impl Error for Undecided {}

/// `bank-N:account` -> (N, account).
pub fn parse_endpoint(s: &str) -> Result<(NodeId, String), String> {
    let (bank, account) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not BANK:ACCOUNT (e.g. bank-1:alice)"))?;
    let id = bank
        .strip_prefix("bank-")
        .unwrap_or(bank)
        .parse::<NodeId>()
        .map_err(|_| format!("'{bank}' is not bank-N (N the bank's node id)"))?;
    if account.is_empty() {
        return Err(format!("'{s}': empty account name"));
    }
    Ok((id, account.to_string()))
}

/// The credentials of a command-line client (`--key-file` or `--keys`).
fn credentials(args: &ClientArgs) -> Result<ClientAuth, Box<dyn Error>> {
    Ok(Keys::load(&args.keys)?.client(CLIENT_IDENTITY)?)
}

fn control(
    stack: &Stack,
    names: &NameResolver,
    node: &str,
    auth: &ClientAuth,
) -> std::io::Result<ControlClient<Client>> {
    Ok(ControlClient::new(named_client(
        stack,
        names,
        node,
        quick_config(Duration::from_secs(3), auth),
    )?))
}

fn outcome_word(commit: bool) -> &'static str {
    if commit { "COMMIT" } else { "ABORT" }
}

/// `ustack 2pc transfer`: asks the coordinator to begin the transfer, then
/// polls for its decision. Prints `tx C.S.N COMMIT|ABORT`.
pub fn run_transfer(args: TransferArgs) -> Result<(), Box<dyn Error>> {
    let from = parse_endpoint(&args.from).map_err(UsageError)?;
    let to = parse_endpoint(&args.to).map_err(UsageError)?;
    let auth = credentials(&args.client)?;
    let stack = start::start(&args.client.stack)?;
    let names = resolver(&stack, args.client.names, &auth)?;
    let coordinator = control(&stack, &names, &args.coordinator, &auth)?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    // One key for every attempt: a retry after a lost reply or a
    // coordinator restart gets the transaction the first attempt began
    // (if its BEGIN reached the log), so the transfer happens at most once.
    let key = rpc::random_id();
    let tx: TxId = loop {
        match coordinator.transfer(key, from.clone(), to.clone(), args.amount) {
            Ok(Ok(tx)) => break tx,
            Ok(Err(why)) => return Err(format!("the coordinator refused: {why}").into()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("cannot reach {}: {e}", args.coordinator).into());
            }
            Err(e) => {
                log::info!("transfer: {e}; retrying");
                thread::sleep(Duration::from_millis(100));
            }
        }
    };
    log::info!("transfer: began {tx}");
    loop {
        match coordinator.outcome(tx) {
            Ok(Some(commit)) => {
                println!("{tx} {}", outcome_word(commit));
                return Ok(());
            }
            Ok(None) => {}
            Err(e) => log::info!("transfer: asking for {tx}: {e}"),
        }
        if Instant::now() >= deadline {
            println!("{tx} UNDECIDED");
            return Err(Undecided.into());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Asks every node for its status; a node that does not answer is an error.
fn collect(
    stack: &Stack,
    names: &NameResolver,
    nodes: &[String],
    auth: &ClientAuth,
) -> Result<Vec<NodeReport>, Box<dyn Error>> {
    nodes
        .iter()
        .map(|n| {
            let reply = control(stack, names, n, auth)?
                .status()
                .map_err(|e| format!("{n}: {e}"))?;
            Ok(NodeReport::new(n, reply))
        })
        .collect()
}

/// `ustack 2pc status`.
pub fn run_status(args: StatusArgs) -> Result<(), Box<dyn Error>> {
    let auth = credentials(&args.client)?;
    let stack = start::start(&args.client.stack)?;
    let names = resolver(&stack, args.client.names, &auth)?;
    let reports = collect(&stack, &names, &args.nodes, &auth)?;
    print!("{}", render(&reports, &BTreeMap::new()));
    Ok(())
}

/// `ustack 2pc check`: waits (up to `--settle`) for every transaction to be
/// decided and acknowledged everywhere, prints the accounts, the
/// transactions and the verdict; fails unless the verdict holds.
pub fn run_check(args: CheckArgs) -> Result<(), Box<dyn Error>> {
    let reported = match &args.reported {
        Some(path) => parse_reported(
            &std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        ),
        None => BTreeMap::new(),
    };
    let auth = credentials(&args.status.client)?;
    let stack = start::start(&args.status.client.stack)?;
    let names = resolver(&stack, args.status.client.names, &auth)?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.settle);
    let reports = loop {
        let attempt = collect(&stack, &names, &args.status.nodes, &auth);
        match attempt {
            Ok(r) if settled(&r) || Instant::now() >= deadline => break r,
            Ok(_) => {}
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(e) => log::info!("check: {e}; retrying"),
        }
        thread::sleep(Duration::from_millis(250));
    };
    print!("{}", render(&reports, &reported));
    let verdict = judge(&reports, args.expect_total, &reported);
    print!("{}", render_verdict(&verdict));
    if verdict.ok() {
        Ok(())
    } else {
        Err("the verdict does not hold".into())
    }
}

/// `ustack 2pc crash`: arms a crash point at a node.
pub fn run_crash(args: CrashArgs) -> Result<(), Box<dyn Error>> {
    let auth = credentials(&args.client)?;
    let stack = start::start(&args.client.stack)?;
    let names = resolver(&stack, args.client.names, &auth)?;
    control(&stack, &names, &args.node, &auth)?
        .crash_at(args.at.to_string())
        .map_err(|e| format!("{}: {e}", args.node))?
        .map_err(|e| format!("{}: {e}", args.node))?;
    println!("{}: crash armed at {}", args.node, args.at);
    Ok(())
}

/// `ustack rpc lookup`: every live address registered under a name.
pub fn run_lookup(args: LookupArgs) -> Result<(), Box<dyn Error>> {
    let auth = credentials(&args.client)?;
    let stack = start::start(&args.client.stack)?;
    let client = names_client(&stack, args.client.names, &auth)?;
    let addrs = client.lookup_all(args.name.clone())?;
    if addrs.is_empty() {
        return Err(format!("{}: not registered", args.name).into());
    }
    for a in addrs {
        println!("{a}");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
