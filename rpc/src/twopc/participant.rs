//! The 2PC participant (the lectures' "worker").
//!
//! ```text
//!  INIT --VOTE-REQUEST, can commit: lock, log READY, send VOTE-COMMIT--> READY
//!  INIT --VOTE-REQUEST, cannot: log ABORT, send VOTE-ABORT--> ABORT
//!  INIT --PREPARE timeout, or a fellow participant asks: log ABORT--> ABORT
//!  READY --GLOBAL-COMMIT: log COMMIT, apply, unlock, send ACK--> COMMIT
//!  READY --GLOBAL-ABORT: log ABORT, unlock, send ACK--> ABORT
//! ```
//!
//! Locks taken at PREPARE are released only by the decision. A READY
//! participant that hears nothing asks the coordinator (DECISION-REQUEST),
//! and if the coordinator stays silent it asks its fellow participants
//! (the termination protocol of the lectures):
//!
//! - one that knows COMMIT or ABORT decides it for the asker too;
//! - one still in INIT (or that never heard of the transaction) aborts on the
//!   spot (logging ABORT before answering, so it can never vote commit
//!   later) and answers ABORT;
//! - if every other participant is READY, nobody can decide: the participant
//!   is **blocked** ([`Effect::Blocked`], [`PartState::Blocked`]), keeps its
//!   locks, and keeps asking until the coordinator returns.
//!
//! Recovery: no record (INIT) -> nothing, the transaction is aborted when
//! anyone asks; COMMIT/ABORT -> nothing, answer questions; READY -> re-lock
//! and ask the coordinator at once, then the peers.
//!
//! The coordinator's end-of-transaction notice ([`Msg::Finished`]) raises
//! its watermark here: decided transactions of that coordinator numbered
//! below it are forgotten (memory at once, the log at the next
//! checkpoint), and a later message about one of them is stale and
//! ignored (see [Bounded logs](super#bounded-logs)). Messages from a node
//! the transaction does not allow are refused and counted
//! ([`Participant::refused`], [Who may say what](super#who-may-say-what)).

use super::{Effect, LogRecord, Msg, NodeId, PeerState, TxId, TxSnapshot};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

/// The application side of a participant: checks and locks at PREPARE,
/// applies at COMMIT, releases at ABORT.
pub trait ResourceManager {
    /// Checks `work` and locks what it touches. `Ok` votes commit; `Err`
    /// votes abort (and must leave nothing locked).
    fn prepare(&mut self, tx: TxId, work: &[u8]) -> Result<(), String>;
    /// Re-takes the locks of a transaction that was READY before a restart
    /// (during recovery; it must not fail).
    fn restore_prepared(&mut self, tx: TxId, work: &[u8]);
    /// Applies a prepared transaction's work and releases its locks.
    fn commit(&mut self, tx: TxId, work: &[u8]);
    /// Releases a prepared transaction's locks.
    fn abort(&mut self, tx: TxId, work: &[u8]);
    /// The committed state (without locks), for checkpoints.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the committed state with a snapshot and drops every lock.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}

/// Participant timers.
#[derive(Debug, Clone)]
pub struct ParticipantConfig {
    /// A transaction announced with [`Participant::expect`] is aborted if
    /// its VOTE-REQUEST does not arrive within this time.
    pub prepare_timeout: Duration,
    /// READY this long without a decision: ask the coordinator.
    pub decision_timeout: Duration,
    /// Ask again this often.
    pub ask_interval: Duration,
    /// Coordinator silent this long after the first question: ask the
    /// other participants too.
    pub peer_query_after: Duration,
    /// Most transactions remembered at once. A message that would add one
    /// more (PREPARE, DECISION or STATE-QUERY about an unknown
    /// transaction) is dropped and counted ([`Participant::refused_full`]);
    /// the protocol re-sends, and a PREPARE that gets no vote times out
    /// into ABORT. Default 4096.
    pub max_transactions: usize,
    /// Most coordinators whose end-of-transaction watermark is kept; a
    /// notice from one more is dropped and counted in
    /// [`Participant::refused`]. Default 256.
    pub max_coordinators: usize,
}

impl Default for ParticipantConfig {
    fn default() -> Self {
        ParticipantConfig {
            prepare_timeout: Duration::from_secs(5),
            decision_timeout: Duration::from_secs(1),
            ask_interval: Duration::from_millis(500),
            peer_query_after: Duration::from_secs(1),
            max_transactions: 4096,
            max_coordinators: 256,
        }
    }
}

/// State of one transaction at a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartState {
    /// Announced, no VOTE-REQUEST yet.
    Init,
    /// Voted commit; waiting for the decision.
    Ready,
    /// READY, and the termination protocol cannot decide: the coordinator is
    /// silent and every other participant is READY.
    Blocked,
    /// Committed.
    Committed,
    /// Aborted.
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    Init,
    Ready,
    Committed,
    Aborted,
}

#[derive(Debug)]
struct PartTx {
    state: Local,
    participants: Vec<NodeId>,
    work: Vec<u8>,
    init_deadline: Option<Instant>,
    next_ask: Option<Instant>,
    asking_since: Option<Instant>,
    answers: BTreeMap<NodeId, PeerState>,
    blocked: bool,
}

impl PartTx {
    fn new(state: Local, participants: Vec<NodeId>, work: Vec<u8>) -> Self {
        PartTx {
            state,
            participants,
            work,
            init_deadline: None,
            next_ask: None,
            asking_since: None,
            answers: BTreeMap::new(),
            blocked: false,
        }
    }
}

/// A participant of any number of transactions, over a resource manager.
/// See the [module docs](self) and the driver contract in [`twopc`](super).
#[derive(Debug)]
pub struct Participant<R> {
    id: NodeId,
    rm: R,
    config: ParticipantConfig,
    txs: BTreeMap<TxId, PartTx>,
    /// Per coordinator: every transaction numbered below has ended.
    watermarks: BTreeMap<NodeId, u64>,
    /// Messages refused by the sender rule.
    refused: u64,
    /// Messages dropped because the table was full.
    refused_full: u64,
    effects: VecDeque<Effect>,
}

impl<R: ResourceManager> Participant<R> {
    /// A participant whose log is empty; `rm` holds the initial state.
    pub fn new(id: NodeId, rm: R, config: ParticipantConfig) -> Self {
        Participant {
            id,
            rm,
            config,
            txs: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            refused: 0,
            refused_full: 0,
            effects: VecDeque::new(),
        }
    }

    /// Rebuilds a participant after a restart from `rm` in its initial state
    /// and the durable log, and queues the recovery actions (READY
    /// transactions ask the coordinator at once).
    pub fn recover(
        id: NodeId,
        rm: R,
        config: ParticipantConfig,
        records: &[LogRecord],
        now: Instant,
    ) -> io::Result<Self> {
        let mut p = Participant::new(id, rm, config);
        for rec in records {
            match rec {
                LogRecord::Snapshot {
                    state,
                    txs,
                    watermarks,
                } => {
                    p.rm.restore(state)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    p.txs.clear();
                    p.watermarks = watermarks.iter().copied().collect();
                    for s in txs {
                        let state = match s.decided {
                            None => {
                                p.rm.restore_prepared(s.tx, &s.work);
                                Local::Ready
                            }
                            Some(true) => Local::Committed,
                            Some(false) => Local::Aborted,
                        };
                        p.txs.insert(
                            s.tx,
                            PartTx::new(state, s.participants.clone(), s.work.clone()),
                        );
                    }
                }
                LogRecord::Ready {
                    tx,
                    participants,
                    work,
                } => {
                    p.rm.restore_prepared(*tx, work);
                    p.txs.insert(
                        *tx,
                        PartTx::new(Local::Ready, participants.clone(), work.clone()),
                    );
                }
                LogRecord::Local { tx, commit } => {
                    let t = p
                        .txs
                        .entry(*tx)
                        .or_insert_with(|| PartTx::new(Local::Init, vec![], vec![]));
                    if t.state == Local::Ready {
                        if *commit {
                            p.rm.commit(*tx, &t.work);
                        } else {
                            p.rm.abort(*tx, &t.work);
                        }
                    }
                    t.state = if *commit {
                        Local::Committed
                    } else {
                        Local::Aborted
                    };
                    t.work.clear();
                }
                LogRecord::Forget { coordinator, below } => {
                    p.raise_watermark(*coordinator, *below);
                }
                _ => {}
            }
        }
        for (tx, t) in &mut p.txs {
            if t.state == Local::Ready {
                log::info!(
                    "2pc participant {id}: recovering {tx} in READY: asking the coordinator"
                );
                t.next_ask = Some(now);
            }
        }
        p.handle_timeout(now);
        Ok(p)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The resource manager.
    pub fn resource(&self) -> &R {
        &self.rm
    }

    /// Messages refused by the sender rule.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Messages dropped because [`ParticipantConfig::max_transactions`]
    /// were remembered.
    pub fn refused_full(&self) -> u64 {
        self.refused_full
    }

    /// `coordinator`'s end-of-transaction watermark here: its decided
    /// transactions numbered below it are forgotten.
    pub fn watermark(&self, coordinator: NodeId) -> u64 {
        self.watermarks.get(&coordinator).copied().unwrap_or(0)
    }

    /// Every coordinator's end-of-transaction watermark here.
    pub fn watermarks(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.watermarks.iter().map(|(c, w)| (*c, *w))
    }

    /// True if `tx` is forgotten here: not in the table and below its
    /// coordinator's watermark.
    pub fn forgot(&self, tx: TxId) -> bool {
        !self.txs.contains_key(&tx) && tx.seq < self.watermark(tx.coordinator)
    }

    /// Raises a coordinator's watermark and forgets what falls below it;
    /// true if it rose.
    fn raise_watermark(&mut self, coordinator: NodeId, below: u64) -> bool {
        if below <= self.watermark(coordinator) {
            return false;
        }
        self.watermarks.insert(coordinator, below);
        let me = self.id;
        self.txs.retain(|tx, t| {
            if tx.coordinator != coordinator || tx.seq >= below {
                return true;
            }
            if t.state == Local::Ready {
                // Cannot happen (the coordinator had our ACK); keep it.
                log::error!("2pc participant {me}: {tx} is READY below the watermark {below}");
                return true;
            }
            false
        });
        true
    }

    /// The state of a transaction (`None`: never heard of it).
    pub fn status(&self, tx: TxId) -> Option<PartState> {
        self.txs.get(&tx).map(|t| match t.state {
            Local::Init => PartState::Init,
            Local::Ready if t.blocked => PartState::Blocked,
            Local::Ready => PartState::Ready,
            Local::Committed => PartState::Committed,
            Local::Aborted => PartState::Aborted,
        })
    }

    /// Every known transaction and its state.
    pub fn transactions(&self) -> Vec<(TxId, PartState)> {
        self.txs
            .keys()
            .filter_map(|tx| Some((*tx, self.status(*tx)?)))
            .collect()
    }

    /// Announces a transaction before its VOTE-REQUEST (state INIT): if the
    /// request does not come within [`ParticipantConfig::prepare_timeout`],
    /// the participant aborts and will vote abort.
    pub fn expect(&mut self, now: Instant, tx: TxId) {
        if !self.txs.contains_key(&tx) {
            let mut t = PartTx::new(Local::Init, vec![], vec![]);
            t.init_deadline = Some(now + self.config.prepare_timeout);
            self.txs.insert(tx, t);
        }
    }

    /// Queues a checkpoint record (committed state and every transaction
    /// known), from which a later recovery starts.
    pub fn checkpoint(&mut self) {
        let rec = self.checkpoint_record();
        self.effects.push_back(Effect::Log(rec));
    }

    /// The checkpoint record (committed state, every transaction known and
    /// not forgotten, the watermarks), to append or to compact the log to.
    /// Only valid when every effect queued so far has been executed.
    pub fn checkpoint_record(&self) -> LogRecord {
        let txs = self
            .txs
            .iter()
            .filter_map(|(tx, t)| {
                let decided = match t.state {
                    Local::Init => return None,
                    Local::Ready => None,
                    Local::Committed => Some(true),
                    Local::Aborted => Some(false),
                };
                Some(TxSnapshot {
                    tx: *tx,
                    decided,
                    participants: t.participants.clone(),
                    work: t.work.clone(),
                })
            })
            .collect();
        LogRecord::Snapshot {
            state: self.rm.snapshot(),
            txs,
            watermarks: self.watermarks.iter().map(|(c, w)| (*c, *w)).collect(),
        }
    }

    /// The sender rule: PREPARE, DECISION and FINISHED only from the
    /// transaction's coordinator; STATE-QUERY and PEER-STATE only from a
    /// fellow participant (a query about a transaction unknown here cannot
    /// be checked, see the module docs).
    fn allowed(&self, from: NodeId, msg: &Msg) -> bool {
        let tx = msg.tx();
        match msg {
            Msg::Prepare { .. } | Msg::Decision { .. } | Msg::Finished { .. } => {
                from == tx.coordinator
            }
            Msg::StateQuery { .. } | Msg::PeerState { .. } => match self.txs.get(&tx) {
                Some(t) if !t.participants.is_empty() => {
                    from != self.id && t.participants.contains(&from)
                }
                _ => matches!(msg, Msg::StateQuery { .. }),
            },
            Msg::Vote { .. } | Msg::Ack { .. } | Msg::DecisionRequest { .. } => false,
        }
    }

    /// Handles a message from the coordinator or a fellow participant.
    /// Messages that break the sender rule are dropped and counted in
    /// [`refused`](Self::refused); messages about a forgotten transaction
    /// are ignored.
    pub fn handle_message(&mut self, now: Instant, from: NodeId, msg: Msg) {
        let tx = msg.tx();
        // A message about a forgotten transaction (below the watermark) is
        // stale -- a late answer, a duplicate -- whoever sends it: it can
        // change nothing, so it is ignored before the sender rule (which
        // could not tell a late peer answer from a forgery without the
        // transaction's participant list). The notice itself is not stale.
        if self.forgot(tx) && !matches!(msg, Msg::Finished { .. }) {
            log::debug!(
                "2pc participant {}: {tx}: stale {} from {from} (forgotten)",
                self.id,
                msg.kind()
            );
            return;
        }
        if !self.allowed(from, &msg) {
            self.refused += 1;
            log::warn!(
                "2pc participant {}: {tx}: refused {} from {from}",
                self.id,
                msg.kind()
            );
            return;
        }
        if let Msg::Finished { below, .. } = msg {
            if !self.watermarks.contains_key(&tx.coordinator)
                && self.watermarks.len() >= self.config.max_coordinators
            {
                self.refused += 1;
                log::warn!(
                    "2pc participant {}: refused FINISHED from coordinator {}: {} coordinators tracked",
                    self.id,
                    tx.coordinator,
                    self.watermarks.len()
                );
                return;
            }
            if self.raise_watermark(tx.coordinator, below) {
                self.effects.push_back(Effect::Log(LogRecord::Forget {
                    coordinator: tx.coordinator,
                    below,
                }));
            }
            return;
        }
        let state = self.txs.get(&tx).map(|t| t.state);
        if state.is_none()
            && self.txs.len() >= self.config.max_transactions
            && matches!(
                msg,
                Msg::Prepare { .. } | Msg::Decision { .. } | Msg::StateQuery { .. }
            )
        {
            self.refused_full += 1;
            log::warn!(
                "2pc participant {}: {tx}: dropped {}: {} transactions remembered",
                self.id,
                msg.kind(),
                self.txs.len()
            );
            return;
        }
        match msg {
            Msg::Prepare {
                participants, work, ..
            } => match state {
                None | Some(Local::Init) => self.prepare(now, tx, participants, work),
                Some(Local::Ready | Local::Committed) => {
                    self.send(tx.coordinator, Msg::Vote { tx, commit: true })
                }
                Some(Local::Aborted) => self.send(tx.coordinator, Msg::Vote { tx, commit: false }),
            },
            Msg::Decision { commit, .. } => match state {
                Some(Local::Ready) => {
                    self.finish(tx, commit);
                    self.send(from, Msg::Ack { tx });
                }
                Some(Local::Committed | Local::Aborted) => {
                    if (state == Some(Local::Committed)) == commit {
                        self.send(from, Msg::Ack { tx });
                    } else {
                        log::error!(
                            "2pc participant {}: {tx}: decision contradicts local outcome",
                            self.id
                        );
                    }
                }
                None | Some(Local::Init) if !commit => {
                    self.abort_unprepared(tx);
                    self.send(from, Msg::Ack { tx });
                }
                None | Some(Local::Init) => {
                    log::error!(
                        "2pc participant {}: {tx}: COMMIT for a transaction never prepared",
                        self.id
                    );
                }
            },
            Msg::StateQuery { .. } => {
                let answer = match state {
                    Some(Local::Ready) => PeerState::Ready,
                    Some(Local::Committed) => PeerState::Committed,
                    Some(Local::Aborted) => PeerState::Aborted,
                    None | Some(Local::Init) => {
                        // Lectures: a worker still in INIT lets both abort;
                        // it must then never vote commit, so log ABORT first.
                        self.abort_unprepared(tx);
                        PeerState::Aborted
                    }
                };
                self.send(from, Msg::PeerState { tx, state: answer });
            }
            Msg::PeerState { state: answer, .. } if state == Some(Local::Ready) => match answer {
                PeerState::Committed => self.finish(tx, true),
                PeerState::Aborted => self.finish(tx, false),
                PeerState::Ready => {
                    if let Some(t) = self.txs.get_mut(&tx) {
                        t.answers.insert(from, PeerState::Ready);
                    }
                    self.check_blocked(now, tx);
                }
            },
            // Messages for the coordinator role, late answers: nothing to do.
            _ => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.txs
            .values()
            .filter_map(|t| match t.state {
                Local::Init => t.init_deadline,
                Local::Ready => t.next_ask,
                _ => None,
            })
            .min()
    }

    /// Aborts INIT transactions whose VOTE-REQUEST is overdue; READY
    /// transactions ask the coordinator and, once it has been silent long
    /// enough, the other participants.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<(TxId, Local)> = self
            .txs
            .iter()
            .filter(|(_, t)| match t.state {
                Local::Init => t.init_deadline.is_some_and(|d| d <= now),
                Local::Ready => t.next_ask.is_some_and(|d| d <= now),
                _ => false,
            })
            .map(|(tx, t)| (*tx, t.state))
            .collect();
        for (tx, state) in due {
            if state == Local::Init {
                log::info!(
                    "2pc participant {}: {tx}: no VOTE-REQUEST in time, aborting",
                    self.id
                );
                self.abort_unprepared(tx);
                continue;
            }
            let me = self.id;
            let Some(t) = self.txs.get_mut(&tx) else {
                continue;
            };
            let since = *t.asking_since.get_or_insert(now);
            t.next_ask = Some(now + self.config.ask_interval);
            let ask_peers = now >= since + self.config.peer_query_after;
            let peers: Vec<NodeId> = if ask_peers {
                t.participants
                    .iter()
                    .copied()
                    .filter(|&p| p != me)
                    .collect()
            } else {
                Vec::new()
            };
            self.send(tx.coordinator, Msg::DecisionRequest { tx });
            for p in peers {
                self.send(p, Msg::StateQuery { tx });
            }
            if ask_peers {
                self.check_blocked(now, tx);
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

    fn send(&mut self, to: NodeId, msg: Msg) {
        self.effects.push_back(Effect::Send { to, msg });
    }

    /// INIT + VOTE-REQUEST: vote.
    fn prepare(&mut self, now: Instant, tx: TxId, participants: Vec<NodeId>, work: Vec<u8>) {
        if !participants.contains(&self.id) {
            log::warn!(
                "2pc participant {}: {tx}: VOTE-REQUEST that does not list us",
                self.id
            );
            return;
        }
        match self.rm.prepare(tx, &work) {
            Ok(()) => {
                self.effects.push_back(Effect::Log(LogRecord::Ready {
                    tx,
                    participants: participants.clone(),
                    work: work.clone(),
                }));
                let mut t = PartTx::new(Local::Ready, participants, work);
                t.next_ask = Some(now + self.config.decision_timeout);
                self.txs.insert(tx, t);
                self.send(tx.coordinator, Msg::Vote { tx, commit: true });
            }
            Err(why) => {
                log::info!("2pc participant {}: {tx}: voting abort: {why}", self.id);
                self.txs
                    .insert(tx, PartTx::new(Local::Init, participants, vec![]));
                self.abort_unprepared(tx);
                self.send(tx.coordinator, Msg::Vote { tx, commit: false });
            }
        }
    }

    /// INIT (or unknown) -> ABORT: nothing is locked.
    fn abort_unprepared(&mut self, tx: TxId) {
        let t = self
            .txs
            .entry(tx)
            .or_insert_with(|| PartTx::new(Local::Init, vec![], vec![]));
        t.state = Local::Aborted;
        t.init_deadline = None;
        self.effects
            .push_back(Effect::Log(LogRecord::Local { tx, commit: false }));
        self.effects
            .push_back(Effect::Outcome { tx, commit: false });
    }

    /// READY -> COMMIT | ABORT.
    fn finish(&mut self, tx: TxId, commit: bool) {
        let Some(t) = self.txs.get_mut(&tx) else {
            return;
        };
        if t.state != Local::Ready {
            return;
        }
        self.effects
            .push_back(Effect::Log(LogRecord::Local { tx, commit }));
        if commit {
            self.rm.commit(tx, &t.work);
        } else {
            self.rm.abort(tx, &t.work);
        }
        t.state = if commit {
            Local::Committed
        } else {
            Local::Aborted
        };
        t.work.clear();
        t.next_ask = None;
        t.blocked = false;
        self.effects.push_back(Effect::Outcome { tx, commit });
    }

    /// Blocked when the coordinator has been silent long enough and every
    /// other participant answered READY.
    fn check_blocked(&mut self, now: Instant, tx: TxId) {
        let me = self.id;
        let patience = self.config.peer_query_after;
        let Some(t) = self.txs.get_mut(&tx) else {
            return;
        };
        let silent = t.asking_since.is_some_and(|s| now >= s + patience);
        let all_ready = t
            .participants
            .iter()
            .filter(|&&p| p != me)
            .all(|p| t.answers.get(p) == Some(&PeerState::Ready));
        if t.state == Local::Ready && silent && all_ready && !t.blocked {
            t.blocked = true;
            log::warn!(
                "2pc participant {me}: {tx} BLOCKED: coordinator silent, all participants READY"
            );
            self.effects.push_back(Effect::Blocked { tx });
        }
    }
}
