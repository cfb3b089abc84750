//! The end-of-run audit of a 2PC system over [`Bank`]s: pure checks over
//! what a test harness (or a demo) observed once a run has settled.
//!
//! The audit answers "is this outcome correct?" for any run, whatever
//! crashes, losses and delays it went through:
//!
//! - every transaction is finished at the coordinator and decided at every
//!   participant that knows it;
//! - every voice agrees on each transaction's outcome: the coordinator's
//!   decision, each participant's state, and every outcome a node reported
//!   (a transaction the coordinator does not know, because its BEGIN never
//!   became durable, counts as aborted);
//! - a participant named in a decided transaction knows the decision;
//! - each bank holds its initial balances plus the work of the committed
//!   transactions (and nothing of the aborted ones), and no lock;
//! - money is conserved over all banks;
//! - every reported block is justified: each participant of the
//!   transaction had logged READY;
//! - each participant's durable log recovers to exactly its live balances;
//! - nothing was forgotten too early: a transaction a participant forgot
//!   (below its coordinator's end-of-transaction watermark) has ended at the
//!   coordinator, or been forgotten there too.
//!
//! Forgotten transactions (see [Bounded logs](super#bounded-logs)) have no
//! voice where they are forgotten: the coordinator's decision on one it
//! forgot is the outcome it reported ([`RunEnd::reported`]).
//!
//! [`audit`] runs every check over a [`RunEnd`] and returns a [`Report`];
//! the single checks are public too ([`disagreement`], [`expected_balances`]),
//! for tools that only see part of a run, such as a status report gathered
//! over the network. Nothing here does I/O, reads the clock or panics on
//! what it is given: problems come back as [`Finding`]s for the caller to
//! assert on or print.
//!
//! ```
//! use rpc::twopc::audit::{self, ParticipantEnd, RunEnd};
//! use rpc::twopc::Bank;
//! use std::time::Instant;
//!
//! // Nothing happened: nothing to find.
//! let bank = Bank::new([("alice", 100)]);
//! let mut run = RunEnd::default();
//! run.participants.insert(1, ParticipantEnd::untouched(bank));
//! assert!(audit::audit(&run, Instant::now()).is_clean());
//! ```

use super::{
    Bank, BankOp, CoordState, Coordinator, LogRecord, NodeId, PartState, Participant,
    ParticipantConfig, TxId, Work,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

/// What a participant looks like at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantEnd {
    /// Its bank at the very start (what recovery replays the log onto).
    pub initial: Bank,
    /// Its live bank now.
    pub bank: Bank,
    /// Every transaction it knows, and its state.
    pub transactions: BTreeMap<TxId, PartState>,
    /// Its log records that survive a crash.
    pub durable: Vec<LogRecord>,
    /// Transactions it reported as blocked ([`Effect::Blocked`](super::Effect::Blocked)).
    pub blocked: BTreeSet<TxId>,
    /// Its end-of-transaction watermark per coordinator (transactions
    /// below are forgotten).
    pub watermarks: BTreeMap<NodeId, u64>,
}

impl ParticipantEnd {
    /// True if the participant forgot `tx` (see [`Participant::forgot`]).
    pub fn forgot(&self, tx: TxId) -> bool {
        !self.transactions.contains_key(&tx)
            && self
                .watermarks
                .get(&tx.coordinator)
                .is_some_and(|&w| tx.seq < w)
    }
}

impl ParticipantEnd {
    /// The end state of a live participant, with its durable log.
    pub fn observe(initial: &Bank, live: &Participant<Bank>, durable: Vec<LogRecord>) -> Self {
        ParticipantEnd {
            initial: initial.clone(),
            bank: live.resource().clone(),
            transactions: live.transactions().into_iter().collect(),
            durable,
            blocked: BTreeSet::new(),
            watermarks: live.watermarks().collect(),
        }
    }

    /// A participant that never took part in anything.
    pub fn untouched(bank: Bank) -> Self {
        ParticipantEnd {
            initial: bank.clone(),
            bank,
            transactions: BTreeMap::new(),
            durable: Vec::new(),
            blocked: BTreeSet::new(),
            watermarks: BTreeMap::new(),
        }
    }
}

/// What the audit looks at: the end of a run with one coordinator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunEnd {
    /// Every transaction begun, with its work. (A sequence number reused
    /// after a crash that lost its BEGIN names the later transaction: the
    /// earlier one never reached anyone.)
    pub work: BTreeMap<TxId, Work>,
    /// The coordinator's state of every transaction it knows.
    pub coordinator: BTreeMap<TxId, CoordState>,
    /// Every participant, by node id.
    pub participants: BTreeMap<NodeId, ParticipantEnd>,
    /// The outcomes each node reported ([`Effect::Outcome`](super::Effect::Outcome)),
    /// coordinator included.
    pub reported: BTreeMap<NodeId, BTreeMap<TxId, bool>>,
    /// The coordinator forgot every transaction numbered below this
    /// ([`Coordinator::forgotten_below`]).
    pub forgotten_below: u64,
}

impl RunEnd {
    /// Takes the coordinator's states from a live coordinator.
    pub fn with_coordinator(mut self, coordinator: &Coordinator) -> Self {
        self.coordinator = coordinator.transactions().collect();
        self.forgotten_below = coordinator.forgotten_below();
        self
    }

    /// True if the coordinator forgot `tx` (ended, below its watermark).
    pub fn coordinator_forgot(&self, tx: TxId) -> bool {
        !self.coordinator.contains_key(&tx) && tx.seq < self.forgotten_below
    }

    /// The outcome the run must show for `tx`: the coordinator's decision
    /// (for one it forgot, the outcome it reported), or abort for a
    /// transaction it does not know or has not decided.
    pub fn decision(&self, tx: TxId) -> bool {
        match self.coordinator.get(&tx) {
            Some(s) => s.decision().unwrap_or(false),
            None => self
                .reported
                .get(&tx.coordinator)
                .and_then(|r| r.get(&tx))
                .copied()
                .unwrap_or(false),
        }
    }
}

/// Nodes (or clients) that recorded different outcomes for a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The transaction.
    pub tx: TxId,
    /// Who recorded COMMIT.
    pub commit: Vec<String>,
    /// Who recorded ABORT.
    pub abort: Vec<String>,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: ABORT at {} but COMMIT at {}",
            self.tx,
            self.abort.join(", "),
            self.commit.join(", ")
        )
    }
}

/// The disagreement among `voices` (who, outcome) about `tx`, if any.
pub fn disagreement<S: Into<String>>(
    tx: TxId,
    voices: impl IntoIterator<Item = (S, bool)>,
) -> Option<Disagreement> {
    let (mut commit, mut abort) = (Vec::new(), Vec::new());
    for (who, outcome) in voices {
        if outcome {
            commit.push(who.into());
        } else {
            abort.push(who.into());
        }
    }
    (!commit.is_empty() && !abort.is_empty()).then_some(Disagreement { tx, commit, abort })
}

/// `initial`'s balances plus the work of `committed` (each an encoded list
/// of [`BankOp`]s), in `i128` so that a wrong run shows as a wrong number
/// rather than an overflow; `None` if some work is malformed.
pub fn expected_balances<'w>(
    initial: &Bank,
    committed: impl IntoIterator<Item = &'w [u8]>,
) -> Option<BTreeMap<String, i128>> {
    let mut balances = signed(initial);
    for work in committed {
        for op in BankOp::decode(work)? {
            *balances.entry(op.account).or_insert(0) += i128::from(op.delta);
        }
    }
    Some(balances)
}

fn signed(bank: &Bank) -> BTreeMap<String, i128> {
    bank.balances()
        .iter()
        .map(|(a, &v)| (a.clone(), i128::from(v)))
        .collect()
}

/// True if `durable` shows that its participant was READY in `tx`: a READY
/// record, or a snapshot listing `tx` as READY or committed.
pub fn logged_ready(durable: &[LogRecord], tx: TxId) -> bool {
    durable.iter().any(|r| match r {
        LogRecord::Ready { tx: t, .. } => *t == tx,
        LogRecord::Snapshot { txs, .. } => {
            txs.iter().any(|s| s.tx == tx && s.decided != Some(false))
        }
        _ => false,
    })
}

/// One thing wrong with a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The coordinator has not finished a transaction (not every
    /// participant acknowledged its decision).
    Unfinished {
        /// Transaction.
        tx: TxId,
        /// Its state at the coordinator.
        state: CoordState,
    },
    /// A participant has not decided a transaction it knows.
    Undecided {
        /// Participant.
        node: NodeId,
        /// Transaction.
        tx: TxId,
        /// Its state there.
        state: PartState,
    },
    /// A participant named in a transaction's work has no record of it,
    /// though the coordinator knows the transaction.
    NoRecord {
        /// Participant.
        node: NodeId,
        /// Transaction.
        tx: TxId,
    },
    /// Different outcomes for one transaction.
    Disagreement(Disagreement),
    /// A participant's work is not a list of [`BankOp`]s.
    MalformedWork {
        /// Participant.
        node: NodeId,
        /// Transaction.
        tx: TxId,
    },
    /// A bank's balances are not its initial ones plus the committed work.
    Balances {
        /// Participant.
        node: NodeId,
        /// Initial balances plus committed work.
        expected: BTreeMap<String, i128>,
        /// The live balances.
        got: BTreeMap<String, i128>,
    },
    /// A bank still holds locks.
    Locked {
        /// Participant.
        node: NodeId,
        /// Locked accounts.
        accounts: usize,
    },
    /// The sum over all banks changed.
    MoneyNotConserved {
        /// At the start.
        initial: u128,
        /// At the end.
        now: u128,
    },
    /// A participant reported a block though not every participant of the
    /// transaction had logged READY (or the transaction was never begun).
    UnjustifiedBlock {
        /// The participant that reported the block.
        node: NodeId,
        /// Transaction.
        tx: TxId,
        /// Why the block is not justified.
        reason: String,
    },
    /// A participant forgot a transaction its coordinator has not ended.
    ForgotTooEarly {
        /// Participant.
        node: NodeId,
        /// Transaction.
        tx: TxId,
    },
    /// Recovery from the durable log does not reproduce the live bank.
    Recovery {
        /// Participant.
        node: NodeId,
        /// What went wrong.
        detail: String,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Unfinished { tx, state } => {
                write!(f, "{tx} not finished at the coordinator: {state:?}")
            }
            Finding::Undecided { node, tx, state } => {
                write!(f, "participant {node}: {tx} undecided ({state:?})")
            }
            Finding::NoRecord { node, tx } => write!(
                f,
                "participant {node} has no record of {tx}, which its coordinator knows"
            ),
            Finding::Disagreement(d) => write!(f, "{d}"),
            Finding::MalformedWork { node, tx } => {
                write!(f, "{tx}: the work of participant {node} is malformed")
            }
            Finding::Balances {
                node,
                expected,
                got,
            } => write!(
                f,
                "bank {node} balances: expected {expected:?} (initial + committed), got {got:?}"
            ),
            Finding::Locked { node, accounts } => {
                write!(f, "bank {node} still holds locks on {accounts} account(s)")
            }
            Finding::MoneyNotConserved { initial, now } => {
                write!(f, "money not conserved: {initial} at the start, {now} now")
            }
            Finding::UnjustifiedBlock { node, tx, reason } => {
                write!(f, "participant {node} blocked on {tx} though {reason}")
            }
            Finding::ForgotTooEarly { node, tx } => write!(
                f,
                "participant {node} forgot {tx}, which its coordinator has not ended"
            ),
            Finding::Recovery { node, detail } => {
                write!(f, "bank {node} recovers from its log differently: {detail}")
            }
        }
    }
}

/// The findings of [`audit`], in the order the checks ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Everything wrong (empty for a correct run).
    pub findings: Vec<Finding>,
}

impl Report {
    /// True if nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for Report {
    /// One finding per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        Ok(())
    }
}

/// Runs every check of the [module docs](self) over `run`. `now` is only
/// the time given to [`Participant::recover`] for the recovery check.
pub fn audit(run: &RunEnd, now: Instant) -> Report {
    let mut findings = Vec::new();
    for (&tx, &state) in &run.coordinator {
        if !matches!(state, CoordState::Ended { .. }) {
            findings.push(Finding::Unfinished { tx, state });
        }
    }
    for (&node, p) in &run.participants {
        for (&tx, &state) in &p.transactions {
            if !matches!(state, PartState::Committed | PartState::Aborted) {
                findings.push(Finding::Undecided { node, tx, state });
            }
        }
    }
    let mut committed: BTreeMap<NodeId, Vec<&[u8]>> = BTreeMap::new();
    let txs: BTreeSet<TxId> = run
        .work
        .keys()
        .chain(run.coordinator.keys())
        .chain(run.reported.values().flat_map(BTreeMap::keys))
        .copied()
        .collect();
    for tx in txs {
        findings.extend(check_outcome(run, tx).map(Finding::Disagreement));
        let Some(work) = run.work.get(&tx) else {
            continue;
        };
        let known = run.coordinator.get(&tx);
        for (node, share) in work {
            let p = run.participants.get(node);
            let state = p.and_then(|p| p.transactions.get(&tx));
            let forgot = p.is_some_and(|p| p.forgot(tx));
            let ended = matches!(known, Some(CoordState::Ended { .. }));
            if known.is_some() && state.is_none() && !forgot {
                findings.push(Finding::NoRecord { node: *node, tx });
            }
            if forgot && !ended && !run.coordinator_forgot(tx) {
                findings.push(Finding::ForgotTooEarly { node: *node, tx });
            }
            if run.decision(tx) {
                committed.entry(*node).or_default().push(share);
            }
        }
    }
    for (&node, p) in &run.participants {
        check_participant(run, node, p, &committed, now, &mut findings);
    }
    let initial: u128 = run.participants.values().map(|p| p.initial.total()).sum();
    let total: u128 = run.participants.values().map(|p| p.bank.total()).sum();
    if initial != total {
        findings.push(Finding::MoneyNotConserved {
            initial,
            now: total,
        });
    }
    Report { findings }
}

/// Every voice on `tx`: the coordinator (abort if it does not know `tx`),
/// each participant that decided it, each node that reported it.
fn check_outcome(run: &RunEnd, tx: TxId) -> Option<Disagreement> {
    let coordinator = match run.coordinator.get(&tx) {
        Some(state) => state.decision().map(|d| ("coordinator".to_string(), d)),
        // Forgotten: its reported outcome speaks for it.
        None if run.coordinator_forgot(tx) => None,
        None => Some(("coordinator (no durable BEGIN)".to_string(), false)),
    };
    let participants = run.participants.iter().filter_map(|(node, p)| {
        let d = match p.transactions.get(&tx)? {
            PartState::Committed => true,
            PartState::Aborted => false,
            _ => return None,
        };
        Some((format!("participant {node}"), d))
    });
    let reported = run.reported.iter().filter_map(|(node, outcomes)| {
        Some((format!("node {node} (reported)"), *outcomes.get(&tx)?))
    });
    disagreement(
        tx,
        coordinator.into_iter().chain(participants).chain(reported),
    )
}

fn check_participant(
    run: &RunEnd,
    node: NodeId,
    p: &ParticipantEnd,
    committed: &BTreeMap<NodeId, Vec<&[u8]>>,
    now: Instant,
    findings: &mut Vec<Finding>,
) {
    let work = committed.get(&node).map(Vec::as_slice).unwrap_or_default();
    match expected_balances(&p.initial, work.iter().copied()) {
        Some(expected) => {
            let got = signed(&p.bank);
            if got != expected {
                findings.push(Finding::Balances {
                    node,
                    expected,
                    got,
                });
            }
        }
        None => {
            for (&tx, w) in &run.work {
                let malformed = w
                    .iter()
                    .any(|(n, share)| *n == node && BankOp::decode(share).is_none());
                if malformed {
                    findings.push(Finding::MalformedWork { node, tx });
                }
            }
        }
    }
    if p.bank.locked() > 0 {
        findings.push(Finding::Locked {
            node,
            accounts: p.bank.locked(),
        });
    }
    for &tx in &p.blocked {
        let reason = match run.work.get(&tx) {
            None => Some("it was never begun".to_string()),
            Some(work) => work
                .iter()
                .find(|(other, _)| {
                    // One that forgot the transaction had decided it, and
                    // its READY may be compacted away.
                    !run.participants
                        .get(other)
                        .is_some_and(|o| o.forgot(tx) || logged_ready(&o.durable, tx))
                })
                .map(|(other, _)| format!("participant {other} never logged READY")),
        };
        if let Some(reason) = reason {
            findings.push(Finding::UnjustifiedBlock { node, tx, reason });
        }
    }
    let recovered = Participant::recover(
        node,
        p.initial.clone(),
        ParticipantConfig::default(),
        &p.durable,
        now,
    );
    match recovered {
        Ok(again) if again.resource().balances() == p.bank.balances() => {}
        Ok(again) => findings.push(Finding::Recovery {
            node,
            detail: format!(
                "{:?} from the log, {:?} live",
                again.resource().balances(),
                p.bank.balances()
            ),
        }),
        Err(e) => findings.push(Finding::Recovery {
            node,
            detail: format!("recovery fails: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests;
