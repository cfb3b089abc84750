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

use super::{
    Coordinator, CoordinatorConfig, Effect, Msg, NodeId, Participant, ParticipantConfig,
    ResourceManager, TxId, Wal, execute,
};
use crate::auth::{AuthKey, ClientAuth};
use crate::blocking::{Client, Transport};
use crate::client::ClientConfig;
use crate::service::CallContext;
use std::collections::HashMap;
use std::io;
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
    fn deliver(&mut self, _ctx: &CallContext, from: NodeId, msg: Msg) {
        let _ = self.tx.send(Input::Deliver(from, msg));
    }
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
        Self::start_with_key(id, wal, coordinator, participant, None, connect, on_event)
    }

    /// [`start`](Self::start) for a system with a shared key: the node
    /// authenticates to its peers with `key`, claiming its id as identity
    /// (see [`auth`](crate::auth)); their servers must have the key too.
    pub fn start_with_key<W, S, C, E>(
        id: NodeId,
        mut wal: W,
        coordinator: Option<CoordinatorConfig>,
        participant: Option<(R, ParticipantConfig)>,
        key: Option<AuthKey>,
        connect: C,
        mut on_event: E,
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
        let inbox = Inbox { tx };
        let driver_state = Arc::clone(&state);
        let failure = Arc::new(Mutex::new(None));
        let driver_failure = Arc::clone(&failure);
        let loopback = inbox.clone();
        let connect = Arc::new(connect);
        thread::Builder::new()
            .name(format!("2pc-node-{id}"))
            .spawn(move || {
                let mut outboxes: HashMap<NodeId, mpsc::Sender<Msg>> = HashMap::new();
                let mut send = |to: NodeId, msg: Msg| {
                    if to == id {
                        let _ = loopback.tx.send(Input::Deliver(id, msg));
                        return;
                    }
                    let outbox = outboxes
                        .entry(to)
                        .or_insert_with(|| spawn_sender(id, to, key.clone(), Arc::clone(&connect)));
                    let _ = outbox.send(msg);
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
                                .and_then(|c| c.begin_keyed(now, key, work));
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
        })
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
) -> mpsc::Sender<Msg>
where
    S: Transport,
    C: Fn(NodeId) -> io::Result<S> + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel::<Msg>();
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
