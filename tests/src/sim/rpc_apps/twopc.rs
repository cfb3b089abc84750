//! 2PC nodes over ustack TCP: a coordinator or a participant whose
//! protocol messages travel as `TwoPcPeer::deliver` calls through an
//! [`RpcServer`] and one [`RpcClient`] per peer, and which can crash at any
//! step of its driver.

use rand::RngExt;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use ip::Ipv4Cidr;
use rpc::twopc::rpc::{TwoPcPeer, TwoPcPeerCall, TwoPcPeerServer};
use rpc::twopc::{
    Bank, Coordinator, CoordinatorConfig, Effect, MemWal, Msg, NodeId, Participant,
    ParticipantConfig, TxId, Wal,
};
use rpc::{CallContext, ClientConfig, ClientEvent, ServerConfig};
use stack::{Interface, InterfaceConfig, SocketError};

use super::{
    ConnectOptions, RpcClient, RpcClientStats, RpcServer, earliest, seeded_rng, wake_no_earlier,
};
use crate::sim::host::{App, HostCtx};

/// Gap between a node's first connections to its peers.
const CONNECT_STAGGER: Duration = Duration::from_millis(1);

/// The nonce the simulated coordinators give their `seq`-th transaction:
/// 128 bits that look random, but that a test can compute (`tx_id`), so
/// that it can name a transaction before it begins. (A real driver draws
/// them with `rpc::twopc::random_nonce`.)
pub fn sim_nonce(seq: u64) -> u128 {
    let x = u128::from(seq).wrapping_add(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834);
    let x = x.wrapping_mul(0x2d35_8dcc_aa6c_78a5_8bb8_4b93_962e_acc9) ^ (x >> 67);
    x.wrapping_mul(0x4b33_a62e_d433_d4a3_9e37_79b9_7f4a_7c15)
}

/// The id of `coordinator`'s `seq`-th transaction in the simulation.
pub fn tx_id(coordinator: NodeId, seq: u64) -> TxId {
    TxId {
        coordinator,
        seq,
        nonce: sim_nonce(seq),
    }
}

pub use rpc::twopc::Work;

/// The role of a [`TwoPcNode`], with what it needs to (re)start.
#[derive(Debug, Clone)]
pub enum TwoPcRole {
    /// A coordinator.
    Coordinator(CoordinatorConfig),
    /// A participant over a bank (its state at the very start).
    Participant {
        /// Initial accounts (recovery replays the log onto them).
        bank: Bank,
        /// Timers.
        config: ParticipantConfig,
    },
}

/// How a node crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// The process dies and the host's stack survives it: the stack closes
    /// the node's sockets (FIN after data already written, RST when unread
    /// data was waiting) and refuses connections until the restart.
    Process,
    /// The machine dies: its stack and every connection vanish without a
    /// segment, the host answers nothing (not even ARP) while down, and it
    /// reboots with a fresh stack (new ISNs, new ephemeral ports); peers
    /// find out from the resets their old connections get then.
    Machine,
}

/// A crash scheduled at a step of a node's driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPlan {
    /// Crash just before this step (1-based, counted over the node's life).
    pub at_step: u64,
    /// How.
    pub mode: CrashMode,
    /// Down this long, then recover from the log.
    pub downtime: Duration,
}

/// Everything a [`TwoPcNode`] did, kept across its crashes: the durable log
/// (the only part the node itself reads back) and the observations the
/// test checks.
#[derive(Debug, Default)]
pub struct NodeHistory {
    /// The stable log: unsynced records are lost by a crash.
    pub wal: MemWal,
    /// Steps performed so far (log appends, syncs, sends, reports).
    pub steps: u64,
    /// Each step: when, its number, what.
    pub trace: Vec<(Instant, u64, String)>,
    /// Outcomes this node reported (durably), per transaction.
    pub outcomes: BTreeMap<TxId, bool>,
    /// Transactions this participant reported as blocked, and when.
    pub blocked: Vec<(TxId, Instant)>,
    /// Transactions this coordinator completed (every ACK in).
    pub completed: Vec<TxId>,
    /// Log compactions (checkpoint and rewrite).
    pub compactions: u64,
    /// Crashes: when, at which step count, how.
    pub crashes: Vec<(Instant, u64, CrashMode)>,
    /// Restarts (recoveries from the log).
    pub restarts: Vec<Instant>,
    /// Transactions this coordinator began, with their work.
    pub begun: Vec<(TxId, Work)>,
    /// Scheduled transactions not begun because the node was down.
    pub rejected_begins: u64,
    /// Protocol messages received and sent.
    pub messages_in: u64,
    /// Protocol messages handed to the RPC layer.
    pub messages_out: u64,
    /// Deliveries that failed at the RPC layer (the protocol re-sends).
    pub failed_deliveries: u64,
    /// Broken invariants and driver failures (must stay empty).
    pub violations: Vec<String>,
    crash_plan: Option<CrashPlan>,
}

impl NodeHistory {
    /// Counts a step; `Err` when the node must crash instead of doing it.
    fn step(&mut self, now: Instant, what: impl FnOnce() -> String) -> Result<(), CrashPlan> {
        self.steps += 1;
        self.trace.push((now, self.steps, what()));
        match self.crash_plan {
            Some(plan) if plan.at_step == self.steps => {
                self.crash_plan = None;
                Err(plan)
            }
            _ => Ok(()),
        }
    }

    /// A message may only announce what the sender's log holds durably.
    fn check_write_ahead(&mut self, id: NodeId, msg: &Msg) {
        let durable = self.wal.durable_records();
        let ok = msg.backed_by(&durable);
        if !ok {
            self.violations
                .push(format!("node {id} sent {msg:?} before logging it durably"));
        }
    }
}

/// A node's inbox: `TwoPcPeer::deliver` queues the message for the node.
#[derive(Debug, Default)]
pub struct Mailbox {
    /// Messages received and not yet handled.
    pub received: VecDeque<(NodeId, Msg)>,
}

impl TwoPcPeer for Mailbox {
    fn deliver(&mut self, _ctx: &CallContext, from: NodeId, msg: Msg) {
        self.received.push_back((from, msg));
    }
}

enum RoleState {
    Coordinator(Coordinator),
    Participant(Participant<Bank>),
}

impl RoleState {
    fn drain(&mut self) -> Vec<Effect> {
        match self {
            RoleState::Coordinator(c) => c.drain_effects(),
            RoleState::Participant(p) => p.drain_effects(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            RoleState::Coordinator(c) => c.poll_timeout(),
            RoleState::Participant(p) => p.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            RoleState::Coordinator(c) => c.handle_timeout(now),
            RoleState::Participant(p) => p.handle_timeout(now),
        }
    }

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Msg) {
        match self {
            RoleState::Coordinator(c) if msg.to_coordinator() => c.handle_message(now, from, msg),
            RoleState::Participant(p) if !msg.to_coordinator() => p.handle_message(now, from, msg),
            _ => {}
        }
    }
}

/// The volatile part of a node: its state machine and its connections.
struct Running {
    id: NodeId,
    role: RoleState,
    server: RpcServer<TwoPcPeerServer<Mailbox>>,
    clients: BTreeMap<NodeId, RpcClient>,
    loopback: VecDeque<(NodeId, Msg)>,
    compact_bytes: Option<u64>,
}

/// What a [`TwoPcNode`] is: identity, role, address book, and the settings
/// of its RPC clients.
#[derive(Debug, Clone)]
pub struct TwoPcNodeSpec {
    /// Node id.
    pub id: NodeId,
    /// Coordinator or participant.
    pub role: TwoPcRole,
    /// Port the node serves `TwoPcPeer` on.
    pub port: u16,
    /// Every other node's address.
    pub peers: BTreeMap<NodeId, SocketAddrV4>,
    /// The host's interface configuration (a machine crash reboots with it).
    pub iface_config: InterfaceConfig,
    /// Seed of rebooted interfaces.
    pub seed: u64,
    /// The RPC clients' call settings.
    pub rpc: ClientConfig,
    /// The RPC clients' connection settings (eager by default: a node keeps
    /// a connection to each peer, so a message sent is on the wire at once).
    pub connect: ConnectOptions,
    /// Compact the log (the role's checkpoint replaces it, one step) once
    /// it holds more than this many bytes after a batch of effects; `None`
    /// (the default): never.
    pub compact_bytes: Option<u64>,
}

impl TwoPcNodeSpec {
    /// A node with the default settings: deliveries time out after 2 s, two
    /// attempts each (the protocol re-sends anyway), eager connections.
    pub fn new(
        id: NodeId,
        role: TwoPcRole,
        port: u16,
        peers: BTreeMap<NodeId, SocketAddrV4>,
        iface_config: InterfaceConfig,
        seed: u64,
    ) -> Self {
        TwoPcNodeSpec {
            id,
            role,
            port,
            peers,
            iface_config,
            seed,
            rpc: ClientConfig {
                call_timeout: Duration::from_secs(2),
                attempt_timeout: Duration::from_millis(500),
                max_attempts: 2,
                backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                ..ClientConfig::default()
            },
            connect: ConnectOptions {
                eager: true,
                ..ConnectOptions::default()
            },
            compact_bytes: None,
        }
    }
}

/// A 2PC node as a simulation application: a [`Coordinator`] or a
/// [`Participant`] over a [`Bank`], a [`MemWal`], an [`RpcServer`] for the
/// `TwoPcPeer` service, and one [`RpcClient`] per peer.
///
/// The driver executes effects by the contract of [`rpc::twopc`], one
/// *step* at a time: appending a record, syncing the log, sending a message,
/// reporting an outcome, a block or a completion. A [`CrashPlan`] makes the
/// node crash just before a given step: it stops there, what it already
/// wrote to its sockets still leaves (the host's stack sends it in the same
/// virtual instant), then the crash takes effect: unsynced log records are
/// lost, the state machine, the RPC cores (with their duplicate tables) and
/// the connections are dropped as [`CrashMode`] says, and after the
/// downtime the node recovers from its log, listens again and reconnects.
///
/// A [`CrashMode::Machine`] crash replaces the host's [`Interface`], so the
/// node must be the only application on its host.
pub struct TwoPcNode {
    spec: TwoPcNodeSpec,
    /// What happened, across crashes (includes the durable log).
    pub history: NodeHistory,
    running: Option<Running>,
    crashing: Option<CrashPlan>,
    down: Option<(Instant, CrashMode)>,
    incarnation: u32,
    begins: VecDeque<(Instant, Work)>,
    timed_crashes: VecDeque<(Instant, CrashMode, Duration)>,
    expects: Vec<TxId>,
}

impl TwoPcNode {
    /// Starts the node on `iface` with an empty log.
    pub fn start(iface: &mut Interface, spec: TwoPcNodeSpec) -> Result<Self, SocketError> {
        let role = match &spec.role {
            TwoPcRole::Coordinator(cfg) => {
                RoleState::Coordinator(Coordinator::new(spec.id, cfg.clone()))
            }
            TwoPcRole::Participant { bank, config } => {
                RoleState::Participant(Participant::new(spec.id, bank.clone(), config.clone()))
            }
        };
        let running = Running::start(iface, &spec, 0, role)?;
        Ok(TwoPcNode {
            spec,
            history: NodeHistory::default(),
            running: Some(running),
            crashing: None,
            down: None,
            incarnation: 0,
            begins: VecDeque::new(),
            timed_crashes: VecDeque::new(),
            expects: Vec::new(),
        })
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.spec.id
    }

    /// Begins a transaction over `work` at time `at` (coordinators only; a
    /// coordinator that is down then drops it and counts it in
    /// [`NodeHistory::rejected_begins`]). Schedule before running.
    pub fn begin_at(&mut self, at: Instant, work: Work) {
        let pos = self.begins.partition_point(|(t, _)| *t <= at);
        self.begins.insert(pos, (at, work));
    }

    /// Crashes just before step `plan.at_step`.
    pub fn crash_at_step(&mut self, plan: CrashPlan) {
        self.history.crash_plan = Some(plan);
    }

    /// Crashes at time `at`, between steps.
    pub fn crash_at_time(&mut self, at: Instant, mode: CrashMode, downtime: Duration) {
        let pos = self.timed_crashes.partition_point(|(t, ..)| *t <= at);
        self.timed_crashes.insert(pos, (at, mode, downtime));
    }

    /// Announces `tx` to this participant before its VOTE-REQUEST (state
    /// INIT), at its next run.
    pub fn expect(&mut self, tx: TxId) {
        self.expects.push(tx);
    }

    /// Crashes scheduled with [`crash_at_time`](Self::crash_at_time) and
    /// not yet happened.
    pub fn timed_crashes_pending(&self) -> usize {
        self.timed_crashes.len()
    }

    /// True unless crashed and not yet recovered.
    pub fn is_up(&self) -> bool {
        self.running.is_some() && self.crashing.is_none()
    }

    /// Restarts so far.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The coordinator, while up.
    pub fn coordinator(&self) -> Option<&Coordinator> {
        match &self.running.as_ref()?.role {
            RoleState::Coordinator(c) => Some(c),
            RoleState::Participant(_) => None,
        }
    }

    /// The participant, while up.
    pub fn participant(&self) -> Option<&Participant<Bank>> {
        match &self.running.as_ref()?.role {
            RoleState::Participant(p) => Some(p),
            RoleState::Coordinator(_) => None,
        }
    }

    /// True when up with a connection established to every peer.
    pub fn connected_to_all(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.clients.values().all(RpcClient::is_connected))
    }

    /// Counters of the RPC clients of this incarnation, per peer.
    pub fn client_stats(&self) -> BTreeMap<NodeId, RpcClientStats> {
        self.running
            .as_ref()
            .map(|r| r.clients.iter().map(|(&p, c)| (p, c.stats)).collect())
            .unwrap_or_default()
    }

    fn crash(&mut self, cx: &mut HostCtx<'_>, mode: CrashMode, downtime: Duration) {
        let now = cx.now;
        self.history.wal.crash();
        let running = self.running.take();
        if mode == CrashMode::Process {
            if let Some(mut run) = running {
                run.server.shutdown(cx);
                for c in run.clients.values_mut() {
                    c.shutdown(cx);
                }
            }
        } else {
            match Interface::try_new(silent_config(&self.spec.iface_config), now) {
                Ok(dead) => *cx.iface = dead,
                Err(e) => self
                    .history
                    .violations
                    .push(format!("cannot power the host off: {e}")),
            }
        }
        self.history.crashes.push((now, self.history.steps, mode));
        self.down = Some((now + downtime, mode));
    }

    fn restart(&mut self, cx: &mut HostCtx<'_>, mode: CrashMode) {
        let now = cx.now;
        let id = self.spec.id;
        self.down = None;
        self.incarnation += 1;
        if mode == CrashMode::Machine {
            let mut cfg = self.spec.iface_config.clone();
            let s = self.spec.seed ^ u64::from(self.incarnation);
            cfg.seed = seeded_rng(s).random();
            match Interface::try_new(cfg, now) {
                Ok(fresh) => *cx.iface = fresh,
                Err(e) => {
                    self.history.violations.push(format!("cannot reboot: {e}"));
                    return;
                }
            }
        }
        let records = match self.history.wal.replay() {
            Ok(r) => r,
            Err(e) => {
                self.history.violations.push(format!("replay failed: {e}"));
                return;
            }
        };
        let role = match &self.spec.role {
            TwoPcRole::Coordinator(cfg) => {
                RoleState::Coordinator(Coordinator::recover(id, cfg.clone(), &records, now))
            }
            TwoPcRole::Participant { bank, config } => {
                match Participant::recover(id, bank.clone(), config.clone(), &records, now) {
                    Ok(p) => RoleState::Participant(p),
                    Err(e) => {
                        self.history
                            .violations
                            .push(format!("recovery failed: {e}"));
                        return;
                    }
                }
            }
        };
        match Running::start(cx.iface, &self.spec, self.incarnation, role) {
            Ok(run) => {
                self.running = Some(run);
                self.history.restarts.push(now);
            }
            Err(e) => self
                .history
                .violations
                .push(format!("cannot listen after restart: {e:?}")),
        }
    }

    /// Drops the begins that are due while the node cannot take them.
    fn reject_due_begins(&mut self, now: Instant) {
        while self.begins.front().is_some_and(|(t, _)| *t <= now) {
            self.begins.pop_front();
            self.history.rejected_begins += 1;
        }
    }

    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let own = earliest([
            self.begins.front().map(|(t, _)| *t),
            self.timed_crashes.front().map(|(t, ..)| *t),
            self.down.map(|(t, _)| t),
        ]);
        let run = self.running.as_ref().and_then(|r| r.poll_timeout(now));
        earliest([own, run])
    }
}

impl App for TwoPcNode {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        let now = cx.now;
        if let Some(plan) = self.crashing.take() {
            self.crash(cx, plan.mode, plan.downtime);
        }
        if let Some(&(at, mode, downtime)) = self.timed_crashes.front()
            && at <= now
        {
            self.timed_crashes.pop_front();
            if self.running.is_some() {
                self.crash(cx, mode, downtime);
            }
        }
        if let Some((until, mode)) = self.down
            && until <= now
        {
            self.restart(cx, mode);
        }
        if self.running.is_none() {
            self.reject_due_begins(now);
        }
        if let Some(run) = self.running.as_mut() {
            if let RoleState::Participant(p) = &mut run.role {
                for tx in self.expects.drain(..) {
                    p.expect(now, tx);
                }
            }
            if let Err(plan) = run.turn(cx, &mut self.history, &mut self.begins) {
                // Stop here; the crash takes effect at the next run, once
                // the stack has sent what the node already wrote.
                self.crashing = Some(plan);
                cx.wake_at(now);
                return;
            }
        }
        if let Some(t) = self.next_wake(now) {
            cx.wake_at(t);
        }
    }
}

/// The configuration of a powered-off host: same MAC (the switch port
/// stays), an address nobody uses, so frames for the node's address are
/// dropped and ARP requests for it go unanswered.
fn silent_config(live: &InterfaceConfig) -> InterfaceConfig {
    let mut cfg = live.clone();
    // 198.51.100.0/24 is TEST-NET-2 (RFC 5737): never a simulated host.
    if let Some(cidr) = Ipv4Cidr::new(Ipv4Addr::new(198, 51, 100, 1), 24) {
        cfg.addr = cidr;
    }
    cfg.gateway = None;
    cfg.routes.clear();
    cfg.announce = false;
    cfg
}

impl Running {
    fn start(
        iface: &mut Interface,
        spec: &TwoPcNodeSpec,
        incarnation: u32,
        role: RoleState,
    ) -> Result<Running, SocketError> {
        let server = RpcServer::listen(
            iface,
            spec.port,
            TwoPcPeerServer(Mailbox::default()),
            ServerConfig {
                // A new number for every run of the node (seeded runs replay).
                incarnation: (u64::from(spec.id) << 32) | u64::from(incarnation),
                ..ServerConfig::default()
            },
        )?;
        let clients = spec
            .peers
            .iter()
            .filter(|&(&p, _)| p != spec.id)
            .enumerate()
            .map(|(k, (&p, &addr))| {
                // Unique per (sender, incarnation, receiver), so a server
                // never mistakes a restarted sender's calls for old ones.
                let client_id =
                    (u64::from(spec.id) << 48) | (u64::from(incarnation) << 16) | u64::from(p);
                let mut client =
                    RpcClient::new(client_id, addr, spec.rpc.clone(), spec.connect.clone());
                // Connections to different peers start 1 ms apart, so that a
                // fresh stack does not resolve several neighbours in one
                // poll: the stack's neighbour cache walks a HashSet, whose
                // order changes from process to process, and on impaired
                // links that order decides which ARP broadcast each random
                // draw applies to (runs would not replay from their seed).
                client.delay_first_connection(CONNECT_STAGGER * k as u32);
                (p, client)
            })
            .collect();
        Ok(Running {
            id: spec.id,
            role,
            server,
            clients,
            loopback: VecDeque::new(),
            compact_bytes: spec.compact_bytes,
        })
    }

    fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let clients = self
            .clients
            .values()
            .filter_map(|c| c.poll_timeout(now))
            .min();
        earliest([
            self.role.poll_timeout().map(|t| wake_no_earlier(now, t)),
            self.server.poll_timeout(now),
            clients,
        ])
    }

    /// One run of the node: connections, then begins, messages and timers,
    /// each followed by the execution of the effects it queued.
    fn turn(
        &mut self,
        cx: &mut HostCtx<'_>,
        h: &mut NodeHistory,
        begins: &mut VecDeque<(Instant, Work)>,
    ) -> Result<(), CrashPlan> {
        let now = cx.now;
        for c in self.clients.values_mut() {
            c.pump(cx);
        }
        self.server.pump(cx);
        // Effects queued by recovery or `expect`.
        self.process(cx, h)?;
        // Begins left behind by a crash are refused (the node is down).
        while begins.front().is_some_and(|(t, _)| *t <= now) {
            let Some((_, work)) = begins.pop_front() else {
                break;
            };
            match &mut self.role {
                RoleState::Coordinator(c) => {
                    match c.begin(now, sim_nonce(c.next_seq()), work.clone()) {
                        Some(tx) => h.begun.push((tx, work)),
                        None => h.violations.push("begin refused".to_string()),
                    }
                }
                RoleState::Participant(_) => h.violations.push("begin at a participant".into()),
            }
            self.process(cx, h)?;
        }
        loop {
            let next = self
                .loopback
                .pop_front()
                .or_else(|| self.server.core.dispatcher_mut().0.received.pop_front());
            let Some((from, msg)) = next else { break };
            h.messages_in += 1;
            self.role.handle_message(now, from, msg);
            self.process(cx, h)?;
        }
        if self.role.poll_timeout().is_some_and(|t| t <= now) {
            self.role.handle_timeout(now);
            self.process(cx, h)?;
        }
        for c in self.clients.values_mut() {
            c.pump(cx);
            while let Some(ClientEvent::Completed { result, .. }) = c.poll_event() {
                if result.is_err() {
                    h.failed_deliveries += 1;
                }
            }
        }
        self.server.pump(cx);
        Ok(())
    }

    /// Executes the queued effects by the driver contract, step by step.
    fn process(&mut self, cx: &mut HostCtx<'_>, h: &mut NodeHistory) -> Result<(), CrashPlan> {
        let now = cx.now;
        let mut dirty = false;
        for effect in self.role.drain() {
            if let Effect::Log(rec) = &effect {
                h.step(now, || format!("append {rec:?}"))?;
                if let Err(e) = h.wal.append(rec) {
                    h.violations.push(format!("append failed: {e}"));
                }
                dirty = true;
                continue;
            }
            if dirty {
                h.step(now, || "sync".to_string())?;
                if let Err(e) = h.wal.sync() {
                    h.violations.push(format!("sync failed: {e}"));
                }
                dirty = false;
            }
            match effect {
                Effect::Send { to, msg } => {
                    h.step(now, || format!("send {to} {msg:?}"))?;
                    h.check_write_ahead(self.id, &msg);
                    self.send(cx, h, to, msg);
                }
                Effect::Outcome { tx, commit } => {
                    h.step(now, || format!("outcome {tx} commit={commit}"))?;
                    if h.outcomes.insert(tx, commit).is_some_and(|o| o != commit) {
                        h.violations
                            .push(format!("node {} changed its outcome of {tx}", self.id));
                    }
                }
                Effect::Blocked { tx } => {
                    h.step(now, || format!("blocked {tx}"))?;
                    h.blocked.push((tx, now));
                }
                Effect::Completed { tx } => {
                    h.step(now, || format!("completed {tx}"))?;
                    h.completed.push(tx);
                }
                Effect::Log(_) => {}
            }
        }
        if dirty {
            h.step(now, || "sync".to_string())?;
            if let Err(e) = h.wal.sync() {
                h.violations.push(format!("sync failed: {e}"));
            }
        }
        // Compaction between batches: every effect is executed, so the
        // checkpoint is what the log holds. Atomic in a MemWal: a crash
        // before this step keeps the old log, after it the new one.
        if self.compact_bytes.is_some_and(|limit| h.wal.size() > limit) {
            let rec = match &self.role {
                RoleState::Coordinator(c) => c.checkpoint_record(),
                RoleState::Participant(p) => p.checkpoint_record(),
            };
            h.step(now, || "compact".to_string())?;
            match h.wal.rewrite(&[rec]) {
                Ok(()) => h.compactions += 1,
                Err(e) => h.violations.push(format!("compaction failed: {e}")),
            }
        }
        Ok(())
    }

    /// Hands a message to the RPC client of its destination and writes it
    /// to the connection at once.
    fn send(&mut self, cx: &mut HostCtx<'_>, h: &mut NodeHistory, to: NodeId, msg: Msg) {
        h.messages_out += 1;
        if to == self.id {
            self.loopback.push_back((to, msg));
            return;
        }
        let Some(client) = self.clients.get_mut(&to) else {
            h.violations
                .push(format!("node {}: no address for {to}", self.id));
            return;
        };
        match TwoPcPeerCall::deliver(self.id, msg) {
            Ok(call) => {
                let (method, args, _) = call.into_parts();
                client.start_call(cx.now, method, args, None);
                client.pump(cx);
            }
            Err(e) => h.violations.push(format!("cannot marshal: {e}")),
        }
    }
}
