//! Two-phase commit (Gray), as sans-IO state machines.
//!
//! - [`Coordinator`]: per transaction INIT -> WAIT -> COMMIT | ABORT -> END.
//! - [`Participant`] (the lectures' "worker"): per transaction
//!   INIT -> READY -> COMMIT | ABORT, or INIT -> ABORT.
//! - [`Wal`]: the stable log ([`FileWal`], [`MemWal`]), replayed on restart by
//!   [`Coordinator::recover`] and [`Participant::recover`].
//! - [`Bank`]: a [`ResourceManager`] for the demo and the tests.
//! - [`rpc`]: the peer interface over RPC and a blocking node driver.
//! - [`audit`]: the end-of-run checks of a run over banks (agreement,
//!   balances, conservation, locks, recovery), shared by the test harnesses
//!   and the demo's verdict.
//!
//! # Driver contract
//!
//! The state machines never perform I/O. Every `handle_*`/`begin`/`recover`
//! call queues [`Effect`]s; the driver takes them with `poll_effect` and
//! executes them **in order**:
//!
//! - [`Effect::Log`]: append the record to the node's [`Wal`];
//! - [`Effect::Send`]: first make every record appended so far durable
//!   ([`Wal::sync`], i.e. `fsync`), then send. This is the write-ahead rule
//!   the protocol depends on: a participant's vote, a coordinator's PREPARE
//!   and decision, and an acknowledgment are each only sent after the state
//!   they announce is on stable storage. [`execute`] implements this; a
//!   driver that cannot sync must stop (crash) rather than send;
//! - [`Effect::Outcome`], [`Effect::Blocked`], [`Effect::Completed`]: reports
//!   for the application (a blocked participant must be shown to the user).
//!   Like sends, they are externally visible, so the log is synced before
//!   them too: an outcome once reported survives any crash.
//!
//! In short: **append every `Log`; before executing any other effect, sync
//! if something was appended since the last sync; sync at the end.**
//!
//! Timers: call `handle_timeout(now)` when `poll_timeout()` is reached (vote
//! timeout and re-sends at the coordinator; PREPARE timeout, decision
//! requests and peer queries at a participant). Messages may be lost,
//! duplicated, delayed or reordered: every message is idempotent, and both
//! sides re-send until they hear back.
//!
//! Route incoming messages with [`Msg::to_coordinator`]: VOTE, ACK and
//! DECISION-REQUEST go to the coordinator role, the rest to the participant.

pub mod audit;
mod bank;
pub mod coordinator;
pub mod participant;
pub mod rpc;
mod wal;

pub use bank::{Bank, BankOp};
pub use coordinator::{CoordState, Coordinator, CoordinatorConfig};
pub use participant::{PartState, Participant, ParticipantConfig, ResourceManager};
pub use wal::{FileWal, MemWal, Wal, crc32};

use serde::{Deserialize, Serialize};
use std::io;

/// A node of the 2PC system (coordinator or participant).
pub type NodeId = u32;

/// A transaction's work: each participant and its share (for a [`Bank`],
/// encoded [`BankOp`]s), as given to [`Coordinator::begin`].
pub type Work = Vec<(NodeId, Vec<u8>)>;

/// A transaction: its coordinator and a sequence number unique there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TxId {
    /// The coordinator that owns the transaction (whom to ask for the decision).
    pub coordinator: NodeId,
    /// Sequence number at that coordinator.
    pub seq: u64,
}

impl std::fmt::Display for TxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tx {}.{}", self.coordinator, self.seq)
    }
}

/// What a participant tells a fellow participant about a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerState {
    /// Prepared and uncertain, like the asker.
    Ready,
    /// Knows the decision was COMMIT.
    Committed,
    /// Knows ABORT, or was still in INIT and has now aborted (so it will
    /// never vote commit).
    Aborted,
}

/// Protocol messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Coordinator to participant: VOTE-REQUEST, with that participant's
    /// share of the work and the list of all participants (for the
    /// termination protocol).
    Prepare {
        /// Transaction.
        tx: TxId,
        /// Every participant of the transaction.
        participants: Vec<NodeId>,
        /// Application payload for this participant (e.g. encoded [`BankOp`]s).
        work: Vec<u8>,
    },
    /// Participant to coordinator: VOTE-COMMIT (`true`) or VOTE-ABORT.
    Vote {
        /// Transaction.
        tx: TxId,
        /// The vote.
        commit: bool,
    },
    /// Coordinator to participant: GLOBAL-COMMIT (`true`) or GLOBAL-ABORT.
    Decision {
        /// Transaction.
        tx: TxId,
        /// The decision.
        commit: bool,
    },
    /// Participant to coordinator: the decision is applied and logged.
    Ack {
        /// Transaction.
        tx: TxId,
    },
    /// READY participant to coordinator: what was decided? (Also counts as
    /// its commit vote if the coordinator is still waiting: a participant
    /// only asks from READY.)
    DecisionRequest {
        /// Transaction.
        tx: TxId,
    },
    /// READY participant to a fellow participant (coordinator not answering).
    StateQuery {
        /// Transaction.
        tx: TxId,
    },
    /// Answer to a [`Msg::StateQuery`].
    PeerState {
        /// Transaction.
        tx: TxId,
        /// The answering participant's state.
        state: PeerState,
    },
}

impl Msg {
    /// The transaction the message is about.
    pub fn tx(&self) -> TxId {
        match self {
            Msg::Prepare { tx, .. }
            | Msg::Vote { tx, .. }
            | Msg::Decision { tx, .. }
            | Msg::Ack { tx }
            | Msg::DecisionRequest { tx }
            | Msg::StateQuery { tx }
            | Msg::PeerState { tx, .. } => *tx,
        }
    }

    /// True for messages handled by the coordinator role (VOTE, ACK,
    /// DECISION-REQUEST); the others go to the participant role.
    pub fn to_coordinator(&self) -> bool {
        matches!(
            self,
            Msg::Vote { .. } | Msg::Ack { .. } | Msg::DecisionRequest { .. }
        )
    }

    /// The write-ahead rule, as a check: true if `durable` (the sender's
    /// log records that have been synced) justifies sending this message.
    /// PREPARE needs the BEGIN; a decision needs the matching global record
    /// (or no BEGIN at all: the coordinator answers ABORT for transactions
    /// it never logged); a commit vote needs READY; an abort vote, an
    /// ABORTED/COMMITTED peer answer and an ACK need the participant's own
    /// outcome record. Queries carry no promise. Tests and debug tooling
    /// call it on every message a node sends.
    pub fn backed_by(&self, durable: &[LogRecord]) -> bool {
        let has = |pred: &dyn Fn(&LogRecord) -> bool| durable.iter().any(pred);
        let begun = |tx: TxId| has(&|r| matches!(r, LogRecord::Begin { tx: t, .. } if *t == tx));
        // The participant's own outcome, in a LOCAL record or a snapshot.
        let local = |tx: TxId, commit: Option<bool>| {
            has(&|r| match r {
                LogRecord::Local { tx: t, commit: c } => {
                    *t == tx && commit.is_none_or(|want| want == *c)
                }
                LogRecord::Snapshot { txs, .. } => txs.iter().any(|s| {
                    s.tx == tx
                        && s.decided
                            .is_some_and(|c| commit.is_none_or(|want| want == c))
                }),
                _ => false,
            })
        };
        match self {
            Msg::Prepare { tx, .. } => begun(*tx),
            Msg::Decision { tx, commit } => {
                !begun(*tx)
                    || has(
                        &|r| matches!(r, LogRecord::Global { tx: t, commit: c } if t == tx && c == commit),
                    )
            }
            Msg::Vote { tx, commit: true } => has(&|r| match r {
                LogRecord::Ready { tx: t, .. } => t == tx,
                LogRecord::Snapshot { txs, .. } => txs.iter().any(|s| s.tx == *tx),
                _ => false,
            }),
            Msg::Vote { tx, commit: false }
            | Msg::PeerState {
                tx,
                state: PeerState::Aborted,
            } => local(*tx, Some(false)),
            Msg::PeerState {
                tx,
                state: PeerState::Committed,
            } => local(*tx, Some(true)),
            Msg::Ack { tx } => local(*tx, None),
            Msg::PeerState { .. } | Msg::DecisionRequest { .. } | Msg::StateQuery { .. } => true,
        }
    }
}

/// A participant's durable knowledge of one transaction (in snapshots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSnapshot {
    /// Transaction.
    pub tx: TxId,
    /// READY (`None`) or decided (`Some(commit)`).
    pub decided: Option<bool>,
    /// Every participant of the transaction.
    pub participants: Vec<NodeId>,
    /// This participant's work (kept while READY).
    pub work: Vec<u8>,
}

/// A record of the write-ahead log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRecord {
    /// Coordinator: transaction begun, VOTE-REQUESTs going out (WAIT).
    Begin {
        /// Transaction.
        tx: TxId,
        /// Its participants.
        participants: Vec<NodeId>,
        /// The client's idempotency key, if it gave one: a request carrying
        /// it again, even after a restart, gets this transaction back
        /// instead of beginning another.
        key: Option<u64>,
    },
    /// Coordinator: the global decision (COMMIT or ABORT).
    Global {
        /// Transaction.
        tx: TxId,
        /// The decision.
        commit: bool,
    },
    /// Coordinator: every participant acknowledged the decision ("got commit").
    End {
        /// Transaction.
        tx: TxId,
    },
    /// Participant: voted commit, resources locked (READY).
    Ready {
        /// Transaction.
        tx: TxId,
        /// Every participant (for the termination protocol after a restart).
        participants: Vec<NodeId>,
        /// This participant's work, applied if the decision is COMMIT.
        work: Vec<u8>,
    },
    /// Participant: local outcome (COMMIT or ABORT).
    Local {
        /// Transaction.
        tx: TxId,
        /// The outcome.
        commit: bool,
    },
    /// Participant: checkpoint of the resource manager and of every
    /// transaction it knows; replay starts from the last one.
    Snapshot {
        /// [`ResourceManager::snapshot`] output.
        state: Vec<u8>,
        /// Known transactions.
        txs: Vec<TxSnapshot>,
    },
}

/// Something a state machine asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Append to the log; must be durable before the next non-`Log` effect.
    Log(LogRecord),
    /// Send a message (after syncing the log).
    Send {
        /// Destination.
        to: NodeId,
        /// Message.
        msg: Msg,
    },
    /// The outcome of a transaction is known here (coordinator: decision
    /// logged; participant: outcome logged and applied).
    Outcome {
        /// Transaction.
        tx: TxId,
        /// COMMIT (`true`) or ABORT.
        commit: bool,
    },
    /// Participant: READY and unable to decide: the coordinator does not
    /// answer and every fellow participant that answered is READY too. Holds
    /// its locks and keeps asking. Reported once per blocked period.
    Blocked {
        /// Transaction.
        tx: TxId,
    },
    /// Coordinator: every participant acknowledged; END logged.
    Completed {
        /// Transaction.
        tx: TxId,
    },
}

/// Executes effects by the contract in the [module docs](self): logs are
/// appended, the log is synced before the first non-`Log` effect that
/// follows an append (and at the end), and everything other than `Log` is
/// handed to `out` in order. An I/O error stops execution: the node must then stop,
/// since it can no longer promise durability.
pub fn execute<W: Wal + ?Sized>(
    wal: &mut W,
    effects: impl IntoIterator<Item = Effect>,
    mut out: impl FnMut(Effect),
) -> io::Result<()> {
    let mut dirty = false;
    for effect in effects {
        match effect {
            Effect::Log(rec) => {
                wal.append(&rec)?;
                dirty = true;
            }
            other => {
                if dirty {
                    wal.sync()?;
                    dirty = false;
                }
                out(other);
            }
        }
    }
    if dirty {
        wal.sync()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
