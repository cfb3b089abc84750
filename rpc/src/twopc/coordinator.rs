//! The 2PC coordinator.
//!
//! ```text
//!  INIT --begin: log BEGIN, send VOTE-REQUEST--> WAIT
//!  WAIT --any VOTE-ABORT or vote timeout: log ABORT, send GLOBAL-ABORT--> ABORT
//!  WAIT --all VOTE-COMMIT: log COMMIT, send GLOBAL-COMMIT--> COMMIT
//!  COMMIT|ABORT --re-send the decision until every ACK: log END--> END
//! ```
//!
//! Recovery (lectures: "coordinator aborts in INIT, WAIT or ABORT, commits in
//! COMMIT"): a transaction whose last record is BEGIN (WAIT) is aborted (ABORT
//! logged, GLOBAL-ABORT sent); one with a decision and no END has its decision
//! re-sent until acknowledged. A transaction the coordinator has no record of
//! and whose number is not below its watermark was never durably begun, so
//! no participant can have voted on it: asked about it, the coordinator
//! answers ABORT. One below the watermark has ended and been forgotten
//! (see [Bounded logs](super#bounded-logs)): messages about it are stale
//! and ignored.
//!
//! Once every participant acknowledged, END is logged and each participant
//! gets the end-of-transaction notice ([`Msg::Finished`]).

use super::{CoordTxSnapshot, Effect, LogRecord, Msg, NodeId, TxId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// Coordinator timers.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Abort a transaction whose votes are not all in after this long.
    pub vote_timeout: Duration,
    /// Re-send VOTE-REQUESTs to silent participants, and decisions to
    /// participants that have not acknowledged, this often.
    pub resend_interval: Duration,
    /// Ended transactions remembered beyond the watermark (by sequence
    /// number), so that a client retrying with its idempotency key, or
    /// asking for the outcome, still gets the transaction. Default 256.
    pub keep_finished: u64,
    /// Most transactions remembered at once (in flight, waiting for
    /// acknowledgments, or ended and kept); [`Coordinator::begin`] refuses
    /// more (counted in [`Coordinator::refused_begins`]). A participant that
    /// stays down holds back the watermark, so this is what bounds the
    /// table then. Default 4096.
    pub max_transactions: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            vote_timeout: Duration::from_secs(2),
            resend_interval: Duration::from_millis(500),
            keep_finished: 256,
            max_transactions: 4096,
        }
    }
}

/// State of one transaction at the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordState {
    /// Waiting for votes.
    Wait,
    /// Decided COMMIT; waiting for acknowledgments.
    Commit,
    /// Decided ABORT; waiting for acknowledgments.
    Abort,
    /// Every participant acknowledged the decision.
    Ended {
        /// The decision.
        committed: bool,
    },
}

impl CoordState {
    /// The decision, once made.
    pub fn decision(self) -> Option<bool> {
        match self {
            CoordState::Wait => None,
            CoordState::Commit => Some(true),
            CoordState::Abort => Some(false),
            CoordState::Ended { committed } => Some(committed),
        }
    }
}

#[derive(Debug)]
struct CoordTx {
    state: CoordState,
    participants: Vec<NodeId>,
    /// Work per participant, for re-sending VOTE-REQUEST (volatile: after a
    /// restart a WAIT transaction is aborted, so it is never needed again).
    work: BTreeMap<NodeId, Vec<u8>>,
    votes: BTreeSet<NodeId>,
    acks: BTreeSet<NodeId>,
    key: Option<u64>,
    vote_deadline: Instant,
    next_resend: Instant,
}

impl CoordTx {
    fn new(state: CoordState, participants: Vec<NodeId>, key: Option<u64>, now: Instant) -> Self {
        CoordTx {
            state,
            participants,
            work: BTreeMap::new(),
            votes: BTreeSet::new(),
            acks: BTreeSet::new(),
            key,
            vote_deadline: now,
            next_resend: now,
        }
    }
}

/// The coordinator of any number of transactions. See the [module docs](self)
/// and the driver contract in [`twopc`](super).
#[derive(Debug)]
pub struct Coordinator {
    id: NodeId,
    config: CoordinatorConfig,
    next_seq: u64,
    txs: BTreeMap<TxId, CoordTx>,
    /// Idempotency keys of the transactions begun with one.
    keys: BTreeMap<u64, TxId>,
    /// Every transaction numbered below this has ended and is forgotten.
    forgotten_below: u64,
    /// Messages refused by the sender rule.
    refused: u64,
    /// Begins refused because the table was full.
    refused_begins: u64,
    effects: VecDeque<Effect>,
}

impl Coordinator {
    /// A coordinator with an empty log.
    pub fn new(id: NodeId, config: CoordinatorConfig) -> Self {
        Coordinator {
            id,
            config,
            next_seq: 1,
            txs: BTreeMap::new(),
            keys: BTreeMap::new(),
            forgotten_below: 0,
            refused: 0,
            refused_begins: 0,
            effects: VecDeque::new(),
        }
    }

    /// Rebuilds a coordinator from its durable log after a restart, and
    /// queues the recovery actions: abort every transaction found in WAIT,
    /// re-send every decision not yet acknowledged.
    pub fn recover(
        id: NodeId,
        config: CoordinatorConfig,
        records: &[LogRecord],
        now: Instant,
    ) -> Self {
        let mut c = Coordinator::new(id, config);
        for rec in records {
            match rec {
                LogRecord::Begin {
                    tx,
                    participants,
                    key,
                } if tx.coordinator == id => {
                    c.next_seq = c.next_seq.max(tx.seq + 1);
                    if let Some(k) = key {
                        c.keys.insert(*k, *tx);
                    }
                    c.txs.insert(
                        *tx,
                        CoordTx::new(CoordState::Wait, participants.clone(), *key, now),
                    );
                }
                LogRecord::Checkpoint {
                    next_seq,
                    forgotten_below,
                    txs,
                } => {
                    c.txs.clear();
                    c.keys.clear();
                    c.next_seq = c.next_seq.max(*next_seq);
                    c.forgotten_below = c.forgotten_below.max(*forgotten_below);
                    for t in txs.iter().filter(|t| t.tx.coordinator == id) {
                        let state = match (t.decision, t.ended) {
                            (None, _) => CoordState::Wait,
                            (Some(committed), true) => CoordState::Ended { committed },
                            (Some(true), false) => CoordState::Commit,
                            (Some(false), false) => CoordState::Abort,
                        };
                        if let Some(k) = t.key {
                            c.keys.insert(k, t.tx);
                        }
                        c.next_seq = c.next_seq.max(t.tx.seq + 1);
                        c.txs.insert(
                            t.tx,
                            CoordTx::new(state, t.participants.clone(), t.key, now),
                        );
                    }
                }
                LogRecord::Global { tx, commit } => {
                    if let Some(t) = c.txs.get_mut(tx) {
                        t.state = if *commit {
                            CoordState::Commit
                        } else {
                            CoordState::Abort
                        };
                    }
                }
                LogRecord::End { tx } => {
                    if let Some(t) = c.txs.get_mut(tx) {
                        let committed = t.state == CoordState::Commit;
                        t.state = CoordState::Ended { committed };
                    }
                }
                _ => {}
            }
        }
        let pending: Vec<(TxId, CoordState)> = c
            .txs
            .iter()
            .filter(|(_, t)| !matches!(t.state, CoordState::Ended { .. }))
            .map(|(tx, t)| (*tx, t.state))
            .collect();
        for (tx, state) in pending {
            match state {
                CoordState::Wait => c.decide(now, tx, false),
                CoordState::Commit | CoordState::Abort => {
                    log::info!("2pc coordinator {id}: recovering {tx}: re-sending decision");
                    c.send_decision(now, tx);
                }
                CoordState::Ended { .. } => {}
            }
        }
        c
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Messages refused by the sender rule (from a node that is not a
    /// participant of the transaction, or about another coordinator's
    /// transaction).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Begins refused because [`CoordinatorConfig::max_transactions`] were
    /// remembered.
    pub fn refused_begins(&self) -> u64 {
        self.refused_begins
    }

    /// Every transaction numbered below this has ended at every participant
    /// and is forgotten here.
    pub fn forgotten_below(&self) -> u64 {
        self.forgotten_below
    }

    /// The sequence number the next transaction begun gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The end-of-transaction watermark: the smallest sequence number not
    /// yet ended (or the next one to use).
    pub fn watermark(&self) -> u64 {
        self.txs
            .iter()
            .filter(|(_, t)| !matches!(t.state, CoordState::Ended { .. }))
            .map(|(tx, _)| tx.seq)
            .min()
            .unwrap_or(self.next_seq)
            .min(self.next_seq)
    }

    /// The checkpoint to compact the log to: every transaction remembered,
    /// the next sequence number and the watermark. Only valid when every
    /// effect queued so far has been executed (the driver compacts between
    /// batches).
    pub fn checkpoint_record(&self) -> LogRecord {
        LogRecord::Checkpoint {
            next_seq: self.next_seq,
            forgotten_below: self.forgotten_below,
            txs: self
                .txs
                .iter()
                .map(|(tx, t)| CoordTxSnapshot {
                    tx: *tx,
                    participants: t.participants.clone(),
                    key: t.key,
                    decision: t.state.decision(),
                    ended: matches!(t.state, CoordState::Ended { .. }),
                })
                .collect(),
        }
    }

    /// Starts a transaction over `work` (one entry per participant: its id
    /// and its share of the work), named with the sequence number and
    /// `nonce` (128 random bits the driver draws: [`random_nonce`](super::random_nonce)).
    /// Queues `Log(BEGIN)` and then a VOTE-REQUEST to each participant.
    /// `None` if `work` is empty or names a participant twice, or if
    /// [`CoordinatorConfig::max_transactions`] are remembered.
    pub fn begin(
        &mut self,
        now: Instant,
        nonce: u128,
        work: Vec<(NodeId, Vec<u8>)>,
    ) -> Option<TxId> {
        self.begin_keyed(now, None, nonce, work)
    }

    /// [`begin`](Self::begin) with an idempotency key chosen by the client
    /// (random, one per intended transaction): if a transaction was begun
    /// with `key` already -- in this run, or in an earlier one whose BEGIN
    /// record reached the log -- that transaction is returned and nothing
    /// new starts. A client that retries a request whose answer it lost
    /// (the coordinator crashed, the reply was lost) so learns the fate of
    /// its first attempt instead of starting a second transaction. Work
    /// given with a known key is ignored.
    pub fn begin_keyed(
        &mut self,
        now: Instant,
        key: Option<u64>,
        nonce: u128,
        work: Vec<(NodeId, Vec<u8>)>,
    ) -> Option<TxId> {
        if let Some(tx) = key.and_then(|k| self.keys.get(&k)) {
            return Some(*tx);
        }
        let participants: Vec<NodeId> = work.iter().map(|(p, _)| *p).collect();
        let distinct: BTreeSet<NodeId> = participants.iter().copied().collect();
        if participants.is_empty() || distinct.len() != participants.len() {
            return None;
        }
        if self.txs.len() >= self.config.max_transactions {
            self.refused_begins += 1;
            log::warn!(
                "2pc coordinator {}: {} transactions remembered, refusing another",
                self.id,
                self.txs.len()
            );
            return None;
        }
        let tx = TxId {
            coordinator: self.id,
            seq: self.next_seq,
            nonce,
        };
        self.next_seq += 1;
        self.effects.push_back(Effect::Log(LogRecord::Begin {
            tx,
            participants: participants.clone(),
            key,
        }));
        if let Some(k) = key {
            self.keys.insert(k, tx);
        }
        let mut t = CoordTx::new(CoordState::Wait, participants, key, now);
        t.work = work.into_iter().collect();
        t.vote_deadline = now + self.config.vote_timeout;
        t.next_resend = now + self.config.resend_interval;
        self.txs.insert(tx, t);
        self.send_prepare(tx, None);
        Some(tx)
    }

    /// The state of a transaction (`None`: unknown here).
    pub fn state(&self, tx: TxId) -> Option<CoordState> {
        self.txs.get(&tx).map(|t| t.state)
    }

    /// Every transaction and its state.
    pub fn transactions(&self) -> impl Iterator<Item = (TxId, CoordState)> + '_ {
        self.txs.iter().map(|(tx, t)| (*tx, t.state))
    }

    /// Handles a message from a participant. Messages that break the
    /// sender rule (see [Who may say what](super#who-may-say-what)) are
    /// dropped and counted in [`refused`](Self::refused).
    pub fn handle_message(&mut self, now: Instant, from: NodeId, msg: Msg) {
        let tx = msg.tx();
        if tx.coordinator != self.id || !msg.to_coordinator() {
            self.refused += 1;
            log::warn!(
                "2pc coordinator {}: {tx}: refused {} from {from}: not for this coordinator",
                self.id,
                msg.kind()
            );
            return;
        }
        let Some(t) = self.txs.get_mut(&tx) else {
            if tx.seq < self.forgotten_below {
                // Ended at every participant and forgotten: a stale message.
                return;
            }
            // Never durably begun: presumed abort (no participant can have
            // voted, since VOTE-REQUEST follows the forced BEGIN record).
            if matches!(msg, Msg::Vote { .. } | Msg::DecisionRequest { .. }) {
                self.effects.push_back(Effect::Send {
                    to: from,
                    msg: Msg::Decision { tx, commit: false },
                });
            }
            return;
        };
        if !t.participants.contains(&from) {
            self.refused += 1;
            log::warn!(
                "2pc coordinator {}: {tx}: refused {} from {from}, not a participant",
                self.id,
                msg.kind()
            );
            return;
        }
        match msg {
            // A DECISION-REQUEST comes from a READY participant, which has
            // voted commit: count it as the vote (its VOTE may have been lost).
            Msg::Vote { commit: true, .. } | Msg::DecisionRequest { .. }
                if t.state == CoordState::Wait =>
            {
                t.votes.insert(from);
                if t.votes.len() == t.participants.len() {
                    self.decide(now, tx, true);
                }
            }
            Msg::Vote { commit: false, .. } if t.state == CoordState::Wait => {
                self.decide(now, tx, false)
            }
            Msg::DecisionRequest { .. } => {
                if let Some(commit) = t.state.decision() {
                    self.effects.push_back(Effect::Send {
                        to: from,
                        msg: Msg::Decision { tx, commit },
                    });
                }
            }
            Msg::Ack { .. } if matches!(t.state, CoordState::Commit | CoordState::Abort) => {
                t.acks.insert(from);
                if t.acks.len() == t.participants.len() {
                    let committed = t.state == CoordState::Commit;
                    t.state = CoordState::Ended { committed };
                    let participants = t.participants.clone();
                    self.effects.push_back(Effect::Log(LogRecord::End { tx }));
                    self.effects.push_back(Effect::Completed { tx });
                    let below = self.watermark();
                    for p in participants {
                        self.effects.push_back(Effect::Send {
                            to: p,
                            msg: Msg::Finished { tx, below },
                        });
                    }
                    self.forget(below);
                }
            }
            // Late votes and duplicate acks change nothing: the decision is
            // re-sent to whoever has not acknowledged it.
            _ => {}
        }
    }

    /// Forgets the ended transactions numbered below `watermark -
    /// keep_finished` (every transaction below the watermark has ended).
    fn forget(&mut self, watermark: u64) {
        let below = watermark.saturating_sub(self.config.keep_finished);
        if below <= self.forgotten_below {
            return;
        }
        self.forgotten_below = below;
        let keys = &mut self.keys;
        self.txs.retain(|tx, t| {
            let keep = tx.seq >= below || !matches!(t.state, CoordState::Ended { .. });
            if !keep {
                if let Some(k) = t.key {
                    keys.remove(&k);
                }
            }
            keep
        });
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.txs
            .values()
            .filter_map(|t| match t.state {
                CoordState::Wait => Some(t.vote_deadline.min(t.next_resend)),
                CoordState::Commit | CoordState::Abort => Some(t.next_resend),
                CoordState::Ended { .. } => None,
            })
            .min()
    }

    /// Aborts transactions whose votes timed out; re-sends VOTE-REQUESTs and
    /// decisions that are still unanswered.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<(TxId, CoordState, bool)> = self
            .txs
            .iter()
            .filter(|(_, t)| !matches!(t.state, CoordState::Ended { .. }))
            .filter(|(_, t)| {
                t.next_resend <= now || (t.state == CoordState::Wait && t.vote_deadline <= now)
            })
            .map(|(tx, t)| (*tx, t.state, t.vote_deadline <= now))
            .collect();
        for (tx, state, vote_timed_out) in due {
            match state {
                CoordState::Wait if vote_timed_out => {
                    log::info!("2pc coordinator {}: {tx}: vote timeout, aborting", self.id);
                    self.decide(now, tx, false);
                }
                CoordState::Wait => {
                    if let Some(t) = self.txs.get_mut(&tx) {
                        t.next_resend = now + self.config.resend_interval;
                        let votes = t.votes.clone();
                        self.send_prepare(tx, Some(&votes));
                    }
                }
                _ => self.send_decision(now, tx),
            }
        }
    }

    /// The next effect to execute.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Takes every queued effect.
    pub fn drain_effects(&mut self) -> Vec<Effect> {
        self.effects.drain(..).collect()
    }

    /// Logs the decision, reports it, and sends it to every participant.
    fn decide(&mut self, now: Instant, tx: TxId, commit: bool) {
        let Some(t) = self.txs.get_mut(&tx) else {
            return;
        };
        t.state = if commit {
            CoordState::Commit
        } else {
            CoordState::Abort
        };
        t.work.clear();
        self.effects
            .push_back(Effect::Log(LogRecord::Global { tx, commit }));
        self.effects.push_back(Effect::Outcome { tx, commit });
        self.send_decision(now, tx);
    }

    /// Sends the decision to every participant that has not acknowledged it.
    fn send_decision(&mut self, now: Instant, tx: TxId) {
        let Some(t) = self.txs.get_mut(&tx) else {
            return;
        };
        let Some(commit) = t.state.decision() else {
            return;
        };
        t.next_resend = now + self.config.resend_interval;
        for &p in &t.participants {
            if !t.acks.contains(&p) {
                self.effects.push_back(Effect::Send {
                    to: p,
                    msg: Msg::Decision { tx, commit },
                });
            }
        }
    }

    /// Sends VOTE-REQUEST to every participant not in `skip`.
    fn send_prepare(&mut self, tx: TxId, skip: Option<&BTreeSet<NodeId>>) {
        let Some(t) = self.txs.get(&tx) else { return };
        for &p in &t.participants {
            if skip.is_some_and(|s| s.contains(&p)) {
                continue;
            }
            let work = t.work.get(&p).cloned().unwrap_or_default();
            self.effects.push_back(Effect::Send {
                to: p,
                msg: Msg::Prepare {
                    tx,
                    participants: t.participants.clone(),
                    work,
                },
            });
        }
    }
}
