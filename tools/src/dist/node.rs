//! Running a 2PC node (coordinator or bank) and the name service as
//! long-lived ustack processes.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rpc::binding::{NameServiceServer, Registrar, Registry};
use rpc::blocking::{SharedServer, serve};
use rpc::twopc::rpc::{Node, NodeOptions, TwoPcPeerServer};
use rpc::twopc::{
    Bank, CoordinatorConfig, Effect, FileWal, LogRecord, NodeId, ParticipantConfig,
    ResourceManager, TxId, Wal,
};
use rpc::{AuthKey, ClientAuth, RpcError};
use sockets_api::{Stack, TcpListener};

use super::control::{ControlImpl, ControlServer, DurableOutcomes, NodeService};
use super::crash::{CrashPlan, CrashSpec, CrashWal, Role, abort_action};
use super::net::{Keys, connect_name, names_client, node_name, resolver};
use super::{CoordinatorArgs, NamesArgs, NodeArgs, ParticipantArgs};
use crate::args::UsageError;
use crate::start;

/// `ustack rpc names`: serves a [`Registry`] until killed.
pub fn run_names(args: NamesArgs) -> Result<(), Box<dyn Error>> {
    if args.min_lease_ms == 0 || args.min_lease_ms > args.max_lease_ms {
        return Err(
            UsageError("--min-lease-ms must be between 1 and --max-lease-ms".into()).into(),
        );
    }
    let keys = Keys::load(&args.keys)?;
    let stack = start::start(&args.stack)?;
    let listener = TcpListener::bind(&stack, (Ipv4Addr::UNSPECIFIED, args.listen))?;
    let registry = Registry::new(
        Duration::from_millis(args.min_lease_ms),
        Duration::from_millis(args.max_lease_ms),
    );
    let server = SharedServer::new(NameServiceServer(registry), keys.server_config());
    println!(
        "ustack rpc names: name service at {}:{} (leases {}..{} ms)",
        stack.addr().addr(),
        args.listen,
        args.min_lease_ms,
        args.max_lease_ms
    );
    serve(move || listener.accept().map(|(s, _)| s), server)?;
    Ok(())
}

/// What a node found in its log on start: transactions in doubt (a crash
/// between prepare and commit) and decisions not yet acknowledged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Records replayed.
    pub records: usize,
    /// Coordinator: BEGIN without decision (will be aborted). Participant:
    /// READY without outcome (must ask).
    pub in_doubt: Vec<TxId>,
    /// Coordinator: decision without END (will be re-sent).
    pub unacknowledged: Vec<TxId>,
}

impl Recovery {
    /// Reads the records as a node of `role` will replay them.
    pub fn of(role: Role, records: &[LogRecord]) -> Recovery {
        let mut begun = BTreeSet::new();
        let mut decided = BTreeSet::new();
        let mut ended = BTreeSet::new();
        let mut ready = BTreeSet::new();
        let mut local = BTreeSet::new();
        for rec in records {
            match rec {
                LogRecord::Begin { tx, .. } => {
                    begun.insert(*tx);
                }
                LogRecord::Global { tx, .. } => {
                    decided.insert(*tx);
                }
                LogRecord::End { tx } => {
                    ended.insert(*tx);
                }
                LogRecord::Ready { tx, .. } => {
                    ready.insert(*tx);
                }
                LogRecord::Local { tx, .. } => {
                    local.insert(*tx);
                }
                LogRecord::Snapshot { txs, .. } => {
                    ready.clear();
                    local.clear();
                    for t in txs {
                        if t.decided.is_some() {
                            local.insert(t.tx);
                        } else {
                            ready.insert(t.tx);
                        }
                    }
                }
                LogRecord::Checkpoint { txs, .. } => {
                    begun.clear();
                    decided.clear();
                    ended.clear();
                    for t in txs {
                        begun.insert(t.tx);
                        if t.decision.is_some() {
                            decided.insert(t.tx);
                        }
                        if t.ended {
                            ended.insert(t.tx);
                        }
                    }
                }
                LogRecord::Forget { .. } => {}
            }
        }
        let (in_doubt, unacknowledged) = match role {
            Role::Coordinator => (
                begun.difference(&decided).copied().collect(),
                decided
                    .intersection(&begun)
                    .filter(|tx| !ended.contains(tx))
                    .copied()
                    .collect(),
            ),
            Role::Participant => (ready.difference(&local).copied().collect(), Vec::new()),
        };
        Recovery {
            records: records.len(),
            in_doubt,
            unacknowledged,
        }
    }

    /// One line for the node's log (the demo script counts `in_doubt=`).
    pub fn line(&self) -> String {
        let list = |txs: &[TxId]| txs.iter().map(TxId::short).collect::<Vec<_>>().join(",");
        format!(
            "recovered: records={} in_doubt={} [{}] unacknowledged={} [{}]",
            self.records,
            self.in_doubt.len(),
            list(&self.in_doubt),
            self.unacknowledged.len(),
            list(&self.unacknowledged)
        )
    }
}

/// `ustack 2pc participant`.
pub fn run_participant(args: ParticipantArgs) -> Result<(), Box<dyn Error>> {
    let accounts = parse_accounts(&args.accounts).map_err(UsageError)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("bank-{}", args.node.id));
    let cfg = ParticipantConfig::default();
    run_node(
        &args.node,
        Role::Participant,
        &name,
        Some(Bank::new(accounts)),
        None,
        Some(cfg),
    )
}

/// `ustack 2pc coordinator`.
pub fn run_coordinator(args: CoordinatorArgs) -> Result<(), Box<dyn Error>> {
    let cfg = CoordinatorConfig {
        vote_timeout: Duration::from_millis(args.vote_timeout_ms),
        ..CoordinatorConfig::default()
    };
    run_node(
        &args.node,
        Role::Coordinator,
        &args.name,
        None,
        Some(cfg),
        None,
    )
}

/// `name=balance,name=balance,...`
pub fn parse_accounts(spec: &str) -> Result<Vec<(String, u64)>, String> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, balance) = item
            .split_once('=')
            .ok_or_else(|| format!("--accounts: '{item}' is not NAME=BALANCE"))?;
        let name = name.trim();
        if name.is_empty() || name.contains(':') {
            return Err(format!("--accounts: bad account name '{name}'"));
        }
        let balance: u64 = balance
            .trim()
            .parse()
            .map_err(|_| format!("--accounts: '{balance}' is not a balance"))?;
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("--accounts: account '{name}' given twice"));
        }
        out.push((name.to_string(), balance));
    }
    if out.is_empty() {
        return Err("--accounts: no accounts".into());
    }
    Ok(out)
}

/// The crash spec from `--crash-at`, or else from `USTACK_2PC_CRASH_AT`;
/// either needs `--testing`.
fn crash_spec(
    arg: Option<CrashSpec>,
    env: Option<String>,
    testing: bool,
    role: Role,
) -> Result<Option<CrashSpec>, UsageError> {
    let env = env.filter(|v| !v.is_empty());
    if !testing && (arg.is_some() || env.is_some()) {
        return Err(UsageError(
            "--crash-at and USTACK_2PC_CRASH_AT are test hooks: start the node with --testing"
                .into(),
        ));
    }
    let spec = match (arg, env) {
        (Some(s), _) => Some(s),
        (None, Some(v)) => Some(
            v.parse()
                .map_err(|e| UsageError(format!("USTACK_2PC_CRASH_AT: {e}")))?,
        ),
        (None, None) => None,
    };
    if let Some(s) = &spec {
        s.check_role(role).map_err(UsageError)?;
    }
    Ok(spec)
}

/// Opens the node's log (locked against a second process; a corrupt log
/// is an error naming the byte offset, and is left as it is). Only a new,
/// empty log is seeded: a bank's starts with a checkpoint of the initial
/// accounts, so that later starts recover from the log alone. A log that
/// holds bytes but no valid record (its first record torn or damaged) is
/// never seeded again from the command line.
fn open_log(dir: &Path, bank: Option<&Bank>) -> Result<(FileWal, Vec<LogRecord>), Box<dyn Error>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
    let path = dir.join("2pc.wal");
    let mut wal =
        FileWal::open(&path).map_err(|e| format!("cannot open log {}: {e}", path.display()))?;
    let mut records = wal.replay()?;
    if records.is_empty() && !wal.was_empty() {
        return Err(format!(
            "log {} holds no valid record: refusing to seed it again (move it away to start afresh)",
            path.display()
        )
        .into());
    }
    if let (true, Some(bank)) = (records.is_empty(), bank) {
        let rec = LogRecord::Snapshot {
            state: bank.snapshot(),
            txs: Vec::new(),
            watermarks: Vec::new(),
        };
        wal.append(&rec)?;
        wal.sync()?;
        records.push(rec);
    }
    Ok((wal, records))
}

fn run_node(
    args: &NodeArgs,
    role: Role,
    name: &str,
    bank: Option<Bank>,
    coordinator: Option<CoordinatorConfig>,
    participant: Option<ParticipantConfig>,
) -> Result<(), Box<dyn Error>> {
    let spec = crash_spec(
        args.crash_at,
        std::env::var("USTACK_2PC_CRASH_AT").ok(),
        args.testing,
        role,
    )?;
    let id = args.id;
    let keys = Keys::load(&args.keys)?;
    let key: AuthKey = keys.key_of(id.into())?;
    let auth = ClientAuth::new(key.clone(), id.into());
    let (wal, records) = open_log(&args.log, bank.as_ref())?;
    let recovery = Recovery::of(role, &records);
    if let (Role::Participant, Some(LogRecord::Snapshot { .. })) = (role, records.first()) {
        if records.len() > 1 {
            log::info!("{name}: accounts come from the log; --accounts only seeds a new log");
        }
    }
    let stack = start::start(&args.stack)?;
    let me = SocketAddrV4::new(stack.addr().addr(), args.listen);
    let listener = TcpListener::bind(&stack, me)?;
    let names = resolver(&stack, args.names, &auth)?;

    let plan = CrashPlan::new(spec);
    let wal = CrashWal::new(wal, Arc::clone(&plan), abort_action(name.to_string()));
    let peer_stack = stack.clone();
    let peer_names = Arc::clone(&names);
    let connect = move |peer: NodeId| connect_name(&peer_stack, &peer_names, &node_name(peer));
    let label = name.to_string();
    let durable = DurableOutcomes::from_log(role, &records);
    let outcomes = Arc::clone(&durable);
    let on_event = move |effect: Effect| match effect {
        Effect::Outcome { tx, commit } => {
            outcomes.record(tx, commit);
            println!("{label}: {tx} {}", if commit { "COMMIT" } else { "ABORT" })
        }
        Effect::Blocked { tx } => {
            println!("{label}: {tx} BLOCKED (coordinator silent, every participant READY)")
        }
        Effect::Completed { tx } => log::info!("{label}: {tx} acknowledged by all"),
        _ => {}
    };
    let node = Node::start_with(
        id,
        wal,
        coordinator,
        bank.zip(participant),
        connect,
        on_event,
        NodeOptions {
            max_log_bytes: args.max_log_bytes,
            key: Some(key.clone()),
            ..NodeOptions::default()
        },
    )?;
    let node = Arc::new(node);
    let rpc_stats = Arc::new(std::sync::OnceLock::new());
    let service = NodeService {
        peer: TwoPcPeerServer(node.inbox()),
        control: ControlServer(ControlImpl {
            node: Arc::clone(&node),
            role,
            plan: Arc::clone(&plan),
            durable,
            testing: args.testing,
            crash_refused: Default::default(),
            rpc_stats: Arc::clone(&rpc_stats),
        }),
    };
    let server = SharedServer::new(service, keys.server_config());
    let weak = Arc::downgrade(&server);
    let _ = rpc_stats.set(Box::new(move || {
        weak.upgrade().map(|s| s.stats()).unwrap_or_default()
    }));
    let serving = thread::Builder::new()
        .name("2pc-serve".into())
        .spawn(move || serve(move || listener.accept().map(|(s, _)| s), server))?;

    let lease = Duration::from_millis(args.lease_ms);
    let _registrations = [node_name(id), name.to_string()]
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|n| register(&stack, args.names, n, me, lease, &auth))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "ustack 2pc {} {name} (node {id}) at {me}, log {}: {}{}",
        match role {
            Role::Coordinator => "coordinator",
            Role::Participant => "participant",
        },
        args.log.display(),
        recovery.line(),
        plan.armed()
            .map(|s| format!(", crash armed at {s}"))
            .unwrap_or_default()
    );
    if args.testing {
        println!("{name}: test hooks on (--testing): crash points can be armed");
    }
    if let Some(balances) = node.with_participant(|p| p.resource().balances().clone()) {
        println!("{name}: balances {}", format_balances(&balances));
    }
    // Serve until the server ends, or stop (as a crash) when the node's log
    // fails: a node that cannot log must not keep answering calls.
    while !serving.is_finished() {
        if let Some(why) = node.failure() {
            return Err(format!("{name}: {why}; stopping").into());
        }
        thread::sleep(Duration::from_millis(100));
    }
    match serving.join() {
        Ok(r) => r?,
        Err(_) => return Err("the server thread panicked".into()),
    }
    Ok(())
}

fn format_balances(b: &BTreeMap<String, u64>) -> String {
    b.iter()
        .map(|(a, v)| format!("{a}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Registers `name -> me` with the name service (retrying for a while: it
/// may be starting too) and keeps the lease renewed.
fn register(
    stack: &Stack,
    names: SocketAddrV4,
    name: String,
    me: SocketAddrV4,
    lease: Duration,
    auth: &ClientAuth,
) -> Result<Registrar, Box<dyn Error>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let client = names_client(stack, names, auth)?;
        match Registrar::start(client, name.clone(), me.to_string(), lease) {
            Ok(r) => return Ok(r),
            Err(e @ RpcError::Remote(_)) => {
                return Err(format!("cannot register {name}: {e}").into());
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("cannot register {name} at {names}: {e}").into());
            }
            Err(e) => {
                log::warn!("registering {name} at {names}: {e}; retrying");
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[cfg(test)]
mod tests;
