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
//!
//! # Who may say what
//!
//! Both state machines check the sender (`from`) of every message against
//! the transaction, and refuse (drop and count: [`Coordinator::refused`],
//! [`Participant::refused`]) what breaks the rule:
//!
//! - a participant takes PREPARE, DECISION and the end-of-transaction
//!   notice only from the transaction's coordinator (`from ==
//!   tx.coordinator`), and STATE-QUERY and its answers only from fellow
//!   participants of the transaction (a query about a transaction it has
//!   never heard of cannot be checked against a list it does not have: it
//!   answers ABORT, as the termination protocol requires, and that
//!   tombstone is forgotten with the coordinator's watermark);
//! - the coordinator takes VOTE, ACK and DECISION-REQUEST only from the
//!   participants of the transaction, and only about its own transactions.
//!
//! `from` is whatever the message says. Over an authenticated RPC
//! connection the driver first checks it against the node id the caller
//! proved ([`CallContext::peer`](crate::CallContext)): a delivery whose
//! `from` differs is dropped and counted ([`rpc::Node::forged`]) before the
//! state machines see it. Transaction ids carry 128 random bits
//! ([`TxId::nonce`]), so nobody can name a transaction it did not see.
//!
//! # Bounded logs
//!
//! Once every participant acknowledged the decision on a transaction, the
//! coordinator logs END and sends each participant the end-of-transaction
//! notice [`Msg::Finished`] `{ tx, below }`: *every* transaction of this
//! coordinator numbered below `below` has ended (`below` is the smallest
//! sequence number not yet ended, or the next number to use). Forgetting
//! then follows one rule:
//!
//! > A node forgets a transaction only when it is decided at **every**
//! > participant, durably: the participant once its coordinator's notice
//! > says so (the transaction is below the watermark), the coordinator once
//! > it is below the watermark by [`CoordinatorConfig::keep_finished`] more
//! > (kept a while longer so that a client retrying with its idempotency
//! > key, or asking for the outcome, still gets it).
//!
//! Why this is safe: a participant acknowledges only after its outcome is
//! on stable storage, and END (hence every notice naming it) only follows
//! every acknowledgment, so no participant of a forgotten transaction is
//! READY or ever will be again: nobody needs an answer about it. What can
//! still arrive is a stale duplicate (an old PREPARE, DECISION or query).
//! Both sides recognise it by its number -- below the watermark and not
//! in the table means forgotten -- and ignore it, rather than prepare it
//! again or take it for "never heard of it" (presumed abort), which would
//! contradict a commit. The watermark is on stable storage before it is
//! used: the coordinator syncs END before each notice and keeps its next
//! sequence number and watermark in its checkpoint, so after a restart it
//! never numbers a new transaction below a watermark it announced; the
//! participant logs the watermark ([`LogRecord::Forget`], and in its
//! [`LogRecord::Snapshot`]). A notice that is lost is covered by the next
//! one (watermarks only grow).
//!
//! Compaction (the driver's, e.g. [`rpc::Node`] when its log grows past
//! [`rpc::NodeOptions::max_log_bytes`]): a checkpoint --
//! [`Coordinator::checkpoint_record`] (remembered transactions, next
//! number, watermark) and [`Participant::checkpoint_record`] (resource
//! state, undecided and not yet forgotten transactions, watermarks) -- is
//! written to a new file, synced, and renamed over the log ([`Wal::rewrite`]);
//! a crash at any step leaves either the old log or the new one, and both
//! recover to the same state.

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

/// The file format version of a [`FileWal`] (its first bytes are
/// `U2PCWAL` and this byte). Version 1 logs (no header, sequential
/// transaction ids) are refused with an error saying so.
pub const WAL_VERSION: u8 = 2;

use serde::{Deserialize, Serialize};
use std::io;

/// A node of the 2PC system (coordinator or participant).
pub type NodeId = u32;

/// A transaction's work: each participant and its share (for a [`Bank`],
/// encoded [`BankOp`]s), as given to [`Coordinator::begin`].
pub type Work = Vec<(NodeId, Vec<u8>)>;

/// A transaction: its coordinator, a sequence number there, and 128 random
/// bits.
///
/// The sequence number orders a coordinator's transactions (the
/// end-of-transaction notices announce "everything below N has ended" with
/// it, see [`Msg::Finished`]); the nonce makes the id unguessable, so that
/// nobody who did not see a transaction can name it (to query, abort or
/// vote on it). The driver draws the nonce ([`random_nonce`]) and hands it
/// to [`Coordinator::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TxId {
    /// The coordinator that owns the transaction (whom to ask for the decision).
    pub coordinator: NodeId,
    /// Sequence number at that coordinator (not unique on its own: a
    /// number whose BEGIN never reached the log is used again).
    pub seq: u64,
    /// 128 random bits.
    pub nonce: u128,
}

impl TxId {
    /// `C.S.hhhhhh`: coordinator, sequence number and the first 24 bits of
    /// the nonce, for tables.
    pub fn short(&self) -> String {
        format!(
            "{}.{}.{:06x}",
            self.coordinator,
            self.seq,
            self.nonce >> 104
        )
    }
}

impl std::fmt::Display for TxId {
    /// `tx C.S.<32 hex digits>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tx {}.{}.{:032x}",
            self.coordinator, self.seq, self.nonce
        )
    }
}

impl std::str::FromStr for TxId {
    type Err = String;

    /// Parses `C.S.HEX`, with or without the `tx ` of [`Display`](std::fmt::Display).
    fn from_str(s: &str) -> Result<TxId, String> {
        let text = s.trim();
        let text = text.strip_prefix("tx").unwrap_or(text).trim();
        let mut parts = text.split('.');
        let (Some(c), Some(seq), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("'{s}' is not a transaction id (C.S.HEX)"));
        };
        let bad = || format!("'{s}' is not a transaction id (C.S.HEX)");
        Ok(TxId {
            coordinator: c.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
            nonce: (nonce.len() <= 32)
                .then(|| u128::from_str_radix(nonce, 16).ok())
                .flatten()
                .ok_or_else(bad)?,
        })
    }
}

/// 128 random bits for a [`TxId`], from the kernel (`getrandom`), or, if
/// that fails, from [`random_id`](crate::random_id) twice.
pub fn random_nonce() -> u128 {
    let mut buf = [0u8; 16];
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length name the unfilled part of `buf`.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            return (u128::from(crate::random_id()) << 64) | u128::from(crate::random_id());
        }
    }
    u128::from_le_bytes(buf)
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
    /// Coordinator to participant, the end-of-transaction notice: every
    /// participant acknowledged the decision on `tx` (END is logged), and
    /// every transaction of this coordinator numbered below `below` has
    /// ended likewise. A participant may then forget every decided
    /// transaction of this coordinator numbered below `below` (see
    /// [Bounded logs](self#bounded-logs)).
    Finished {
        /// The transaction that just ended.
        tx: TxId,
        /// Every transaction of the coordinator with a smaller sequence
        /// number has ended (or never reached any participant).
        below: u64,
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
            | Msg::PeerState { tx, .. }
            | Msg::Finished { tx, .. } => *tx,
        }
    }

    /// The message's name, for logs (`PREPARE`, `VOTE`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Prepare { .. } => "PREPARE",
            Msg::Vote { .. } => "VOTE",
            Msg::Decision { .. } => "DECISION",
            Msg::Ack { .. } => "ACK",
            Msg::DecisionRequest { .. } => "DECISION-REQUEST",
            Msg::StateQuery { .. } => "STATE-QUERY",
            Msg::PeerState { .. } => "PEER-STATE",
            Msg::Finished { .. } => "FINISHED",
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
        let begun = |tx: TxId| {
            has(&|r| match r {
                LogRecord::Begin { tx: t, .. } => *t == tx,
                LogRecord::Checkpoint { txs, .. } => txs.iter().any(|s| s.tx == tx),
                _ => false,
            })
        };
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
                    || has(&|r| match r {
                        LogRecord::Global { tx: t, commit: c } => t == tx && c == commit,
                        LogRecord::Checkpoint { txs, .. } => txs
                            .iter()
                            .any(|s| s.tx == *tx && s.decision == Some(*commit)),
                        _ => false,
                    })
            }
            Msg::Finished { tx, .. } => has(&|r| match r {
                LogRecord::End { tx: t } => t == tx,
                LogRecord::Checkpoint { txs, .. } => txs.iter().any(|s| s.tx == *tx && s.ended),
                _ => false,
            }),
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

/// A coordinator's durable knowledge of one transaction (in checkpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordTxSnapshot {
    /// Transaction.
    pub tx: TxId,
    /// Its participants.
    pub participants: Vec<NodeId>,
    /// The client's idempotency key, if it gave one.
    pub key: Option<u64>,
    /// The decision, once logged (`None`: WAIT, aborted on recovery).
    pub decision: Option<bool>,
    /// Every participant acknowledged the decision (END logged).
    pub ended: bool,
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
        /// Per coordinator, the end-of-transaction watermark: every
        /// transaction of that coordinator numbered below it has ended and
        /// is forgotten here.
        watermarks: Vec<(NodeId, u64)>,
    },
    /// Participant: a [`Msg::Finished`] raised `coordinator`'s watermark to
    /// `below` (the decided transactions under it are forgotten).
    Forget {
        /// The coordinator.
        coordinator: NodeId,
        /// Its new watermark.
        below: u64,
    },
    /// Coordinator: checkpoint of every transaction it still remembers;
    /// replay starts from the last one.
    Checkpoint {
        /// The next sequence number to use.
        next_seq: u64,
        /// Every transaction numbered below this has ended and is forgotten.
        forgotten_below: u64,
        /// Remembered transactions.
        txs: Vec<CoordTxSnapshot>,
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
