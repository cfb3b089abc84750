//! 2PC over RPC: the peer interface, and a blocking node driver.
//!
//! Protocol messages travel as one-way deliveries: `TwoPcPeer::deliver(from,
//! msg)` returns `()` as soon as the message is queued at the receiver; the
//! protocol's answers (votes, acks, states) are deliveries in the other
//! direction. This keeps the state machines message-driven (the same code
//! runs over an in-memory network, ustack's simulator, or sockets) and keeps
//! the log-before-send rule in one place, the node's driver. In the
//! simulator, wrap a [`Coordinator`]/[`Participant`] in
//! `TwoPcPeerServer` and the sans-IO [`ServerCore`](crate::ServerCore), and
//! send with `TwoPcPeerCall::deliver` through a [`ClientCore`](crate::ClientCore).
//!
//! A delivery over an authenticated connection whose `from` is not the node
//! id the caller proved ([`CallContext::peer`]) is dropped and counted
//! ([`Node::forged`]); the reply is the same `()` (the protocol never reads
//! it, and a forger learns nothing). Without authentication (`peer` is
//! `None`) the state machines' own sender rule still applies to `from`.
//!
//! The driver compacts the log ([`Wal::rewrite`] with both roles'
//! checkpoints) between batches of effects once it grows past
//! [`NodeOptions::max_log_bytes`] (and past twice the last checkpoint, so
//! that a large checkpoint is not rewritten over and over).

use super::{
    Coordinator, CoordinatorConfig, Effect, Msg, NodeId, Participant, ParticipantConfig,
    ResourceManager, TxId, Wal, execute, random_nonce,
};
use crate::auth::{AuthKey, ClientAuth};
use crate::blocking::{Client, Transport};
use crate::client::ClientConfig;
use crate::service::CallContext;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

crate::service! {
    /// The 2PC peer interface: one-way delivery of protocol messages.
    pub trait TwoPcPeer {
        server TwoPcPeerServer;
        client TwoPcPeerClient;
        calls TwoPcPeerCall;

        /// Delivers `msg` from node `from`; the reply only confirms receipt.
        fn deliver(from: NodeId, msg: Msg) -> ();
    }
}

enum Input {
    Deliver(NodeId, Msg),
    Begin(
        Vec<(NodeId, Vec<u8>)>,
        Option<u64>,
        mpsc::Sender<Option<TxId>>,
    ),
}

/// The receiving end of a node: implements [`TwoPcPeer`] by queueing each
/// message for the node's driver thread. Serve it with
/// `blocking::serve(accept, SharedServer::new(TwoPcPeerServer(inbox), cfg))`.
#[derive(Debug, Clone)]
pub struct Inbox {
    tx: mpsc::Sender<Input>,
    forged: Arc<AtomicU64>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Deliver(from, msg) => write!(f, "Deliver({from}, {msg:?})"),
            Input::Begin(work, key, _) => {
                write!(f, "Begin({} participants, key {key:?})", work.len())
            }
        }
    }
}

impl TwoPcPeer for Inbox {
    fn deliver(&mut self, ctx: &CallContext, from: NodeId, msg: Msg) {
        if let Some(peer) = ctx.peer {
            if peer != u64::from(from) {
                self.forged.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "2pc: dropped {} for {} claiming to be from node {from}: the connection proved node {peer}",
                    msg.kind(),
                    msg.tx()
                );
                return;
            }
        }
        let _ = self.tx.send(Input::Deliver(from, msg));
    }
}

/// Options of a [`Node`]'s driver.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Compact the log (checkpoint and rotation) once it holds more than
    /// this many bytes (and more than twice the last checkpoint). Default
    /// 64 KiB.
    pub max_log_bytes: u64,
    /// Most peers the node keeps a sender (a thread and a connection) for;
    /// a message to one more is dropped and counted
    /// ([`NodeStats::dropped_sends`]). A forged sender id must not make the
    /// node spawn a thread per id. Default 256.
    pub max_peers: usize,
    /// Messages queued per peer; beyond, a message is dropped and counted
    /// (the protocol re-sends). Default 1024.
    pub max_queued: usize,
    /// The key the node authenticates to its peers with, claiming its id
    /// as identity (see [`auth`](crate::auth)): the system's shared key, or
    /// this node's own key, which the peers' servers then list for its id
    /// ([`ServerKeys::PerNode`](crate::auth::ServerKeys::PerNode)). `None`:
    /// unauthenticated.
    pub key: Option<AuthKey>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            max_log_bytes: 64 << 10,
            max_peers: 256,
            max_queued: 1024,
            key: None,
        }
    }
}

/// Counters of a [`Node`] (for status reports), since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Deliveries dropped because `from` was not the authenticated peer.
    pub forged: u64,
    /// Messages the state machines refused by the sender rule.
    pub refused: u64,
    /// Begins refused because the coordinator's table was full.
    pub refused_begins: u64,
    /// Messages a participant dropped because its table was full.
    pub refused_full: u64,
    /// Messages dropped on the way out: too many peers, or too many queued
    /// for one.
    pub dropped_sends: u64,
    /// Log compactions.
    pub compactions: u64,
    /// Bytes in the log now.
    pub log_bytes: u64,
    /// Transactions in the state machines' tables now.
    pub transactions: u64,
}

/// The roles and log of a node, owned by its driver thread.
struct NodeState<R> {
    coordinator: Option<Coordinator>,
    participant: Option<Participant<R>>,
}

/// A 2PC node (coordinator, participant, or both) run by threads over
/// blocking RPC: a driver thread owns the state machines and the log and
/// executes their effects by the [contract](super) (sync before send); one
/// sender thread per peer delivers messages through a [`Client`].
pub struct Node<R> {
    id: NodeId,
    state: Arc<Mutex<NodeState<R>>>,
    inbox: Inbox,
    /// Why the driver stopped (its log failed), once it has.
    failure: Arc<Mutex<Option<String>>>,
    /// Compactions done, bytes in the log, messages dropped on the way out.
    log_stats: Arc<(AtomicU64, AtomicU64, AtomicU64)>,
}

impl<R> std::fmt::Debug for Node<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.id).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl<R: ResourceManager + Send + 'static> Node<R> {
    /// Starts a node, recovering both roles from `wal`. `participant` gives
    /// the resource manager in its initial state (recovery applies the log
    /// to it). `connect(peer)` opens a stream to a peer; `on_event` sees
    /// every [`Effect::Outcome`], [`Effect::Blocked`] and [`Effect::Completed`].
    pub fn start<W, S, C, E>(
        id: NodeId,
        wal: W,
        coordinator: Option<CoordinatorConfig>,
        participant: Option<(R, ParticipantConfig)>,
        connect: C,
        on_event: E,
    ) -> io::Result<Node<R>>
    where
        W: Wal + Send + 'static,
        S: Transport,
        C: Fn(NodeId) -> io::Result<S> + Send + Sync + 'static,
        E: FnMut(Effect) + Send + 'static,
    {
        Self::start_with(
            id,
            wal,
            coordinator,
            participant,
            connect,
            on_event,
            NodeOptions::default(),
        )
    }

    /// [`start`](Self::start) with driver options (bounds, the shared key).
    pub fn start_with<W, S, C, E>(
        id: NodeId,
        mut wal: W,
        coordinator: Option<CoordinatorConfig>,
        participant: Option<(R, ParticipantConfig)>,
        connect: C,
        mut on_event: E,
        options: NodeOptions,
    ) -> io::Result<Node<R>>
    where
        W: Wal + Send + 'static,
        S: Transport,
        C: Fn(NodeId) -> io::Result<S> + Send + Sync + 'static,
        E: FnMut(Effect) + Send + 'static,
    {
        let records = wal.replay()?;
        let now = Instant::now();
        let state = NodeState {
            coordinator: coordinator.map(|cfg| Coordinator::recover(id, cfg, &records, now)),
            participant: match participant {
                Some((rm, cfg)) => Some(Participant::recover(id, rm, cfg, &records, now)?),
                None => None,
            },
        };
        let state = Arc::new(Mutex::new(state));
        let (tx, rx) = mpsc::channel();
        let inbox = Inbox {
            tx,
            forged: Arc::new(AtomicU64::new(0)),
        };
        let log_stats = Arc::new((
            AtomicU64::new(0),
            AtomicU64::new(wal.size()),
            AtomicU64::new(0),
        ));
        let driver_log_stats = Arc::clone(&log_stats);
        let mut compact_at = options.max_log_bytes;
        let driver_state = Arc::clone(&state);
        let failure = Arc::new(Mutex::new(None));
        let driver_failure = Arc::clone(&failure);
        let loopback = inbox.clone();
        let connect = Arc::new(connect);
        thread::Builder::new()
            .name(format!("2pc-node-{id}"))
            .spawn(move || {
                let mut outboxes: HashMap<NodeId, mpsc::SyncSender<Msg>> = HashMap::new();
                let dropped = Arc::clone(&driver_log_stats);
                let (max_peers, max_queued) = (options.max_peers, options.max_queued);
                let key = options.key.clone();
                let mut send = |to: NodeId, msg: Msg| {
                    if to == id {
                        let _ = loopback.tx.send(Input::Deliver(id, msg));
                        return;
                    }
                    if !outboxes.contains_key(&to) && outboxes.len() >= max_peers {
                        dropped.2.fetch_add(1, Ordering::Relaxed);
                        log::warn!(
                            "2pc node {id}: {max_peers} peers already, dropping a message to {to}"
                        );
                        return;
                    }
                    let outbox = outboxes.entry(to).or_insert_with(|| {
                        spawn_sender(id, to, key.clone(), Arc::clone(&connect), max_queued)
                    });
                    if outbox.try_send(msg).is_err() {
                        // Full (the peer is slow or down): the protocol re-sends.
                        dropped.2.fetch_add(1, Ordering::Relaxed);
                    }
                };
                loop {
                    let (effects, wait) = {
                        let mut st = lock(&driver_state);
                        let now = Instant::now();
                        if let Some(c) = st
                            .coordinator
                            .as_mut()
                            .filter(|c| c.poll_timeout().is_some_and(|t| t <= now))
                        {
                            c.handle_timeout(now);
                        }
                        if let Some(p) = st
                            .participant
                            .as_mut()
                            .filter(|p| p.poll_timeout().is_some_and(|t| t <= now))
                        {
                            p.handle_timeout(now);
                        }
                        let mut effects = Vec::new();
                        if let Some(c) = st.coordinator.as_mut() {
                            effects.extend(c.drain_effects());
                        }
                        if let Some(p) = st.participant.as_mut() {
                            effects.extend(p.drain_effects());
                        }
                        let next = [
                            st.coordinator.as_ref().and_then(Coordinator::poll_timeout),
                            st.participant.as_ref().and_then(Participant::poll_timeout),
                        ]
                        .into_iter()
                        .flatten()
                        .min();
                        let wait = next.map_or(Duration::from_millis(100), |t| {
                            t.saturating_duration_since(now)
                        });
                        (
                            effects,
                            wait.clamp(Duration::from_millis(1), Duration::from_millis(100)),
                        )
                    };
                    if let Err(e) = execute(&mut wal, effects, |effect| match effect {
                        Effect::Send { to, msg } => send(to, msg),
                        other => on_event(other),
                    }) {
                        // Durability is gone: stop, like a crash, and say
                        // so (Node::failure), so the program stops too
                        // instead of answering calls it cannot log.
                        log::error!("2pc node {id}: log failed, stopping: {e}");
                        *lock(&driver_failure) = Some(format!("the log failed: {e}"));
                        return;
                    }
                    if wal.size() > compact_at {
                        // Every effect is executed: the state machines'
                        // state is what the log holds.
                        let records: Vec<_> = {
                            let st = lock(&driver_state);
                            st.coordinator
                                .as_ref()
                                .map(Coordinator::checkpoint_record)
                                .into_iter()
                                .chain(st.participant.as_ref().map(Participant::checkpoint_record))
                                .collect()
                        };
                        let before = wal.size();
                        if let Err(e) = wal.rewrite(&records) {
                            log::error!("2pc node {id}: compacting the log failed, stopping: {e}");
                            *lock(&driver_failure) =
                                Some(format!("compacting the log failed: {e}"));
                            return;
                        }
                        compact_at = options.max_log_bytes.max(2 * wal.size());
                        driver_log_stats.0.fetch_add(1, Ordering::Relaxed);
                        log::info!(
                            "2pc node {id}: log compacted from {before} to {} bytes",
                            wal.size()
                        );
                    }
                    driver_log_stats.1.store(wal.size(), Ordering::Relaxed);
                    let input = match rx.recv_timeout(wait) {
                        Ok(input) => input,
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    };
                    let mut st = lock(&driver_state);
                    let now = Instant::now();
                    match input {
                        Input::Deliver(from, msg) => {
                            if msg.to_coordinator() {
                                if let Some(c) = st.coordinator.as_mut() {
                                    c.handle_message(now, from, msg);
                                }
                            } else if let Some(p) = st.participant.as_mut() {
                                p.handle_message(now, from, msg);
                            }
                        }
                        Input::Begin(work, key, reply) => {
                            let tx = st
                                .coordinator
                                .as_mut()
                                .and_then(|c| c.begin_keyed(now, key, random_nonce(), work));
                            let _ = reply.send(tx);
                        }
                    }
                }
            })?;
        Ok(Node {
            id,
            state,
            inbox,
            failure,
            log_stats,
        })
    }

    /// Deliveries dropped because their `from` was not the node id the
    /// connection proved.
    pub fn forged(&self) -> u64 {
        self.inbox.forged.load(Ordering::Relaxed)
    }

    /// The node's counters.
    pub fn stats(&self) -> NodeStats {
        let st = lock(&self.state);
        let c = st.coordinator.as_ref();
        let p = st.participant.as_ref();
        NodeStats {
            forged: self.forged(),
            refused: c.map_or(0, Coordinator::refused) + p.map_or(0, Participant::refused),
            refused_begins: c.map_or(0, Coordinator::refused_begins),
            refused_full: p.map_or(0, Participant::refused_full),
            dropped_sends: self.log_stats.2.load(Ordering::Relaxed),
            compactions: self.log_stats.0.load(Ordering::Relaxed),
            log_bytes: self.log_stats.1.load(Ordering::Relaxed),
            transactions: (c.map_or(0, |c| c.transactions().count())
                + p.map_or(0, |p| p.transactions().len())) as u64,
        }
    }

    /// Why the node stopped, if it did: its log failed, so it can no
    /// longer make anything durable. A program running the node should
    /// stop then (a crash, for the protocol), not keep accepting calls.
    pub fn failure(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The receiving end, to serve over RPC (see [`Inbox`]).
    pub fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    /// Starts a transaction (coordinator nodes only); returns once BEGIN is
    /// queued (its VOTE-REQUESTs leave after the record is synced).
    pub fn begin(&self, work: Vec<(NodeId, Vec<u8>)>) -> Option<TxId> {
        self.begin_keyed(None, work)
    }

    /// [`begin`](Self::begin) with an idempotency key (see
    /// [`Coordinator::begin_keyed`]).
    pub fn begin_keyed(&self, key: Option<u64>, work: Vec<(NodeId, Vec<u8>)>) -> Option<TxId> {
        let (tx, rx) = mpsc::channel();
        self.inbox.tx.send(Input::Begin(work, key, tx)).ok()?;
        rx.recv().ok().flatten()
    }

    /// Runs `f` on the coordinator role.
    pub fn with_coordinator<T>(&self, f: impl FnOnce(&Coordinator) -> T) -> Option<T> {
        lock(&self.state).coordinator.as_ref().map(f)
    }

    /// Runs `f` on the participant role.
    pub fn with_participant<T>(&self, f: impl FnOnce(&Participant<R>) -> T) -> Option<T> {
        lock(&self.state).participant.as_ref().map(f)
    }
}

/// A thread that delivers messages to one peer, in order, through a blocking
/// client. Failed deliveries are dropped: the protocol re-sends.
fn spawn_sender<S, C>(
    me: NodeId,
    peer: NodeId,
    key: Option<AuthKey>,
    connect: Arc<C>,
    max_queued: usize,
) -> mpsc::SyncSender<Msg>
where
    S: Transport,
    C: Fn(NodeId) -> io::Result<S> + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::sync_channel::<Msg>(max_queued);
    let config = ClientConfig {
        call_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_millis(500),
        max_attempts: 2,
        auth: key.map(|k| ClientAuth::new(k, me.into())),
        ..ClientConfig::default()
    };
    let spawned = thread::Builder::new()
        .name(format!("2pc-send-{me}-{peer}"))
        .spawn(move || {
            let client = match Client::new(move || connect(peer), config) {
                Ok(c) => TwoPcPeerClient::new(c),
                Err(e) => {
                    log::error!("2pc node {me}: cannot start client for {peer}: {e}");
                    return;
                }
            };
            while let Ok(msg) = rx.recv() {
                if let Err(e) = client.deliver(me, msg) {
                    log::debug!("2pc node {me}: delivery to {peer} failed: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("2pc node {me}: cannot spawn sender for {peer}: {e}");
    }
    tx
}
