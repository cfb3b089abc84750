//! The control interface every 2PC node serves beside the protocol's peer
//! interface (on the same port): begin a transfer and ask for its outcome
//! (coordinator), report balances and transactions, arm a crash point (only
//! at a node started with `--testing`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rpc::twopc::rpc::{Inbox, Node, TwoPcPeerServer};
use rpc::twopc::{Bank, BankOp, CoordState, LogRecord, NodeId, PartState, TxId};
use rpc::{CallContext, Dispatch, RemoteError};

use super::crash::{CrashPlan, CrashSpec, Role};

/// One transaction as a node recorded it: the outcome if this node knows
/// it, and a label (`WAIT`, `READY`, `COMMIT`, `ABORT~`, ...).
pub type TxRow = (TxId, Option<bool>, String);

/// A node's state: id, role (`coordinator`/`participant`), committed
/// balances, number of locked accounts, every transaction it remembers,
/// the coordinator's forgotten-below watermark (0 at a bank), and counters
/// (name, value).
pub type StatusReply = (
    NodeId,
    String,
    Vec<(String, u64)>,
    u64,
    Vec<TxRow>,
    u64,
    Vec<(String, u64)>,
);

rpc::service! {
    /// Control interface of a `ustack 2pc` node.
    pub trait Control {
        server ControlServer;
        client ControlClient;
        calls ControlCall;

        /// Coordinator: begins moving `amount` from account `from.1` at
        /// bank `from.0` to account `to.1` at bank `to.0`; returns the
        /// transaction.
        /// `key` names the intended transfer: asked again with the same
        /// key (a retry), the coordinator returns the transaction it began
        /// for it, even across its own restarts, instead of a new one.
        fn transfer(
            key: u64,
            from: (NodeId, String),
            to: (NodeId, String),
            amount: u64
        ) -> Result<TxId, String>;
        /// Coordinator: the decision on `tx` (`None`: not decided, or unknown).
        fn outcome(tx: TxId) -> Option<bool>;
        /// Balances and transactions as this node recorded them.
        fn status() -> StatusReply;
        /// Arms a crash point (`POINT` or `POINT:N`); refused unless the
        /// node runs with `--testing`.
        fn crash_at(spec: String) -> Result<(), String>;
    }
}

/// Label of a coordinator state: `~` marks a decision not yet acknowledged
/// by every participant.
pub fn coord_label(state: CoordState) -> (Option<bool>, &'static str) {
    match state {
        CoordState::Wait => (None, "WAIT"),
        CoordState::Commit => (Some(true), "COMMIT~"),
        CoordState::Abort => (Some(false), "ABORT~"),
        CoordState::Ended { committed: true } => (Some(true), "COMMIT"),
        CoordState::Ended { committed: false } => (Some(false), "ABORT"),
    }
}

/// Label of a participant state.
pub fn part_label(state: PartState) -> (Option<bool>, &'static str) {
    match state {
        PartState::Init => (None, "INIT"),
        PartState::Ready => (None, "READY"),
        PartState::Blocked => (None, "BLOCKED"),
        PartState::Committed => (Some(true), "COMMIT"),
        PartState::Aborted => (Some(false), "ABORT"),
    }
}

/// The work of a transfer, per participant (one entry per bank; both
/// operations go to one participant when both accounts are at one bank).
pub fn transfer_work(
    from: (NodeId, &str),
    to: (NodeId, &str),
    amount: u64,
) -> Result<Vec<(NodeId, Vec<u8>)>, String> {
    let delta = i64::try_from(amount)
        .ok()
        .filter(|&d| d > 0)
        .ok_or_else(|| format!("amount {amount} must be between 1 and {}", i64::MAX))?;
    if from == to {
        return Err("cannot transfer from an account to itself".into());
    }
    let debit = BankOp {
        account: from.1.to_string(),
        delta: -delta,
    };
    let credit = BankOp {
        account: to.1.to_string(),
        delta,
    };
    Ok(if from.0 == to.0 {
        vec![(from.0, BankOp::encode(&[debit, credit]))]
    } else {
        vec![
            (from.0, BankOp::encode(&[debit])),
            (to.0, BankOp::encode(&[credit])),
        ]
    })
}

/// The outcomes a node has on stable storage.
///
/// The state machines change state when they decide, and the driver logs
/// and syncs the decision a moment later; an outcome read from the state
/// machine in between could be lost in a crash (a coordinator that dies
/// before its COMMIT record is durable aborts on recovery). So the control
/// interface only reports what is here: the decisions found in the log at
/// start, and those the driver reported with `Effect::Outcome`, which the
/// driver contract executes only after syncing the log.
///
/// Bounded: it keeps the latest [`DurableOutcomes::CAPACITY`] outcomes (a
/// client asks right after its transaction ends; the state machine keeps
/// what it still needs itself).
#[derive(Debug, Default)]
pub struct DurableOutcomes {
    outcomes: Mutex<(BTreeMap<TxId, bool>, VecDeque<TxId>)>,
}

impl DurableOutcomes {
    /// The outcomes recorded in a replayed log, as a node of `role` reads
    /// it (coordinator: GLOBAL records; participant: local outcomes).
    pub fn from_log(role: Role, records: &[LogRecord]) -> Arc<Self> {
        let d = DurableOutcomes::default();
        for rec in records {
            match (role, rec) {
                (Role::Coordinator, LogRecord::Global { tx, commit })
                | (Role::Participant, LogRecord::Local { tx, commit }) => {
                    d.record(*tx, *commit);
                }
                (Role::Coordinator, LogRecord::Checkpoint { txs, .. }) => {
                    *d.lock() = Default::default();
                    for t in txs {
                        if let Some(commit) = t.decision {
                            d.record(t.tx, commit);
                        }
                    }
                }
                (Role::Participant, LogRecord::Snapshot { txs, .. }) => {
                    *d.lock() = Default::default();
                    for t in txs {
                        if let Some(commit) = t.decided {
                            d.record(t.tx, commit);
                        }
                    }
                }
                _ => {}
            }
        }
        Arc::new(d)
    }

    /// Outcomes kept.
    pub const CAPACITY: usize = 4096;

    fn lock(&self) -> MutexGuard<'_, (BTreeMap<TxId, bool>, VecDeque<TxId>)> {
        match self.outcomes.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Records an outcome the driver reported (after syncing the log),
    /// forgetting the oldest beyond [`CAPACITY`](Self::CAPACITY).
    pub fn record(&self, tx: TxId, commit: bool) {
        let mut g = self.lock();
        let (map, order) = &mut *g;
        if map.insert(tx, commit).is_none() {
            order.push_back(tx);
            while order.len() > Self::CAPACITY {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    /// The durable outcome of `tx`.
    pub fn get(&self, tx: TxId) -> Option<bool> {
        self.lock().0.get(&tx).copied()
    }

    /// A state machine's row, with a decision not yet durable shown as
    /// undecided (`SYNCING`).
    fn overlay(&self, tx: TxId, (decided, label): (Option<bool>, &str)) -> TxRow {
        match (decided, self.get(tx)) {
            (Some(_), None) => (tx, None, "SYNCING".into()),
            _ => (tx, decided, label.to_string()),
        }
    }
}

/// Implements [`Control`] on a running node.
pub struct ControlImpl {
    /// The node.
    pub node: Arc<Node<Bank>>,
    /// Its role.
    pub role: Role,
    /// Its crash plan.
    pub plan: Arc<CrashPlan>,
    /// What it has decided durably.
    pub durable: Arc<DurableOutcomes>,
    /// Started with `--testing`: test hooks (`crash_at`) allowed.
    pub testing: bool,
    /// `crash_at` calls refused (no `--testing`).
    pub crash_refused: Arc<AtomicU64>,
    /// The counters of the RPC server this service runs in (set once it
    /// exists, since it holds this service): authentication failures and
    /// frames failing their MAC are attacks an operator wants to see.
    pub rpc_stats: Arc<OnceLock<RpcStatsFn>>,
}

/// Reads the counters of the RPC server a node's services run in.
pub type RpcStatsFn = Box<dyn Fn() -> rpc::ServerStats + Send + Sync>;

impl ControlImpl {
    /// The node's counters, for `status`.
    fn counters(&self) -> Vec<(String, u64)> {
        let s = self.node.stats();
        let mut counters = vec![
            ("log_bytes".into(), s.log_bytes),
            ("compactions".into(), s.compactions),
            ("transactions".into(), s.transactions),
            ("refused".into(), s.refused),
            ("forged".into(), s.forged),
            ("begins_refused".into(), s.refused_begins),
            ("full_refused".into(), s.refused_full),
            ("dropped_sends".into(), s.dropped_sends),
            (
                "crash_at_refused".into(),
                self.crash_refused.load(Ordering::Relaxed),
            ),
        ];
        if let Some(rpc) = self.rpc_stats.get().map(|f| f()) {
            counters.extend([
                ("rpc_authenticated".into(), rpc.authenticated),
                ("rpc_auth_failed".into(), rpc.auth_failed),
                ("rpc_bad_mac".into(), rpc.bad_mac),
                ("rpc_refused_connections".into(), rpc.refused_connections),
                ("rpc_protocol_errors".into(), rpc.protocol_errors),
            ]);
        }
        counters
    }
}

impl Control for ControlImpl {
    fn transfer(
        &mut self,
        _ctx: &CallContext,
        key: u64,
        (from, from_account): (NodeId, String),
        (to, to_account): (NodeId, String),
        amount: u64,
    ) -> Result<TxId, String> {
        if self.role != Role::Coordinator {
            return Err("not a coordinator".into());
        }
        let work = transfer_work((from, &from_account), (to, &to_account), amount)?;
        self.node
            .begin_keyed(Some(key), work)
            .ok_or_else(|| "the coordinator did not begin the transaction".into())
    }

    fn outcome(&mut self, _ctx: &CallContext, tx: TxId) -> Option<bool> {
        self.durable.get(tx)
    }

    fn status(&mut self, _ctx: &CallContext) -> StatusReply {
        let id = self.node.id();
        let counters = self.counters();
        match self.role {
            Role::Coordinator => {
                let (txs, below) = self
                    .node
                    .with_coordinator(|c| {
                        let txs = c
                            .transactions()
                            .map(|(tx, s)| self.durable.overlay(tx, coord_label(s)))
                            .collect();
                        (txs, c.forgotten_below())
                    })
                    .unwrap_or_default();
                (
                    id,
                    "coordinator".into(),
                    Vec::new(),
                    0,
                    txs,
                    below,
                    counters,
                )
            }
            Role::Participant => self
                .node
                .with_participant(|p| {
                    let bank = p.resource();
                    let balances = bank
                        .balances()
                        .iter()
                        .map(|(a, b)| (a.clone(), *b))
                        .collect();
                    let txs = p
                        .transactions()
                        .into_iter()
                        .map(|(tx, s)| self.durable.overlay(tx, part_label(s)))
                        .collect();
                    (
                        id,
                        "participant".into(),
                        balances,
                        bank.locked() as u64,
                        txs,
                        0,
                        counters.clone(),
                    )
                })
                .unwrap_or_else(|| {
                    (
                        id,
                        "participant".into(),
                        Vec::new(),
                        0,
                        Vec::new(),
                        0,
                        counters,
                    )
                }),
        }
    }

    fn crash_at(&mut self, _ctx: &CallContext, spec: String) -> Result<(), String> {
        if !self.testing {
            self.crash_refused.fetch_add(1, Ordering::Relaxed);
            log::warn!("refused crash_at {spec:?}: the node was not started with --testing");
            return Err("test hooks are off (the node was not started with --testing)".into());
        }
        let spec: CrashSpec = spec.parse()?;
        spec.check_role(self.role)?;
        self.plan.arm(spec);
        log::warn!("armed crash point {spec}");
        Ok(())
    }
}

/// The 2PC peer interface and the control interface on one port: the
/// method ids of the two services are distinct hashes, so a call the peer
/// stub does not know goes to the control stub.
pub struct NodeService {
    /// Protocol messages.
    pub peer: TwoPcPeerServer<Inbox>,
    /// Control calls.
    pub control: ControlServer<ControlImpl>,
}

impl Dispatch for NodeService {
    fn dispatch(
        &mut self,
        ctx: &CallContext,
        method: u32,
        args: &[u8],
    ) -> Result<Vec<u8>, RemoteError> {
        match self.peer.dispatch(ctx, method, args) {
            Err(RemoteError::UnknownMethod(_)) => self.control.dispatch(ctx, method, args),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests;
