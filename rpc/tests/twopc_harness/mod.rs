//! A deterministic in-memory network with a virtual clock for 2PC nodes,
//! with crash injection at every effect step and invariant checks.
//!
//! Each node executes its state machine's effects one *step* at a time:
//! appending a record, syncing the log, sending a message, reporting an
//! outcome. A node can be told to crash just before its k-th step: its
//! volatile state is dropped, its log loses every unsynced record, messages
//! to it are lost while it is down, and after the downtime it recovers from
//! its log.

#![allow(dead_code)]

pub use super::seeded::Rng;
use rpc::twopc::audit::{self, ParticipantEnd, RunEnd};
use rpc::twopc::{
    Bank, CoordState, Coordinator, CoordinatorConfig, Effect, MemWal, Msg, NodeId, PartState,
    Participant, ParticipantConfig, TxId, Wal,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The nonce of every transaction begun here (ids are predictable in these
/// tests: `tx(1)` is the first transaction).
pub const NONCE: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;

/// The id of coordinator 0's `seq`-th transaction.
pub fn tx(seq: u64) -> TxId {
    TxId {
        coordinator: 0,
        seq,
        nonce: NONCE,
    }
}

pub enum Role {
    Coord(Option<Coordinator>),
    Part(Option<Participant<Bank>>, Bank),
}

pub struct Node {
    pub id: NodeId,
    pub role: Role,
    pub wal: MemWal,
    pub down_until: Option<Instant>,
    pub steps: u64,
    pub crash_at: Option<u64>,
    pub downtime: Duration,
    pub crashes: u32,
    /// Outcomes reported (durably) by this node.
    pub outcomes: BTreeMap<TxId, bool>,
    /// Transactions this node reported as blocked, and when.
    pub blocked: BTreeMap<TxId, Instant>,
}

impl Node {
    pub fn is_up(&self) -> bool {
        self.down_until.is_none()
    }

    fn drain(&mut self) -> Vec<Effect> {
        match &mut self.role {
            Role::Coord(Some(c)) => c.drain_effects(),
            Role::Part(Some(p), _) => p.drain_effects(),
            _ => Vec::new(),
        }
    }

    pub fn coordinator(&self) -> Option<&Coordinator> {
        match &self.role {
            Role::Coord(c) => c.as_ref(),
            Role::Part(..) => None,
        }
    }

    pub fn participant(&self) -> Option<&Participant<Bank>> {
        match &self.role {
            Role::Part(p, _) => p.as_ref(),
            Role::Coord(_) => None,
        }
    }
}

/// Decides which messages (from, to, msg) the network drops.
pub type Filter = Box<dyn FnMut(NodeId, NodeId, &Msg) -> bool>;

/// One step of the trace: (time since start, node, step number, what).
pub type TraceEntry = (Duration, NodeId, u64, String);

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub nodes: BTreeMap<NodeId, Node>,
    queue: BTreeMap<(Instant, u64), (NodeId, NodeId, Msg)>,
    seq: u64,
    pub rng: Rng,
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub dup: f64,
    pub loss: f64,
    /// Messages matching this are dropped (for directed scenarios).
    pub filter: Option<Filter>,
    /// Every message ever sent (for replaying duplicates).
    pub sent: Vec<(NodeId, NodeId, Msg)>,
    pub trace: Vec<TraceEntry>,
    pub work: BTreeMap<TxId, Vec<(NodeId, Vec<u8>)>>,
    pub ccfg: CoordinatorConfig,
    pub pcfg: ParticipantConfig,
    pub delivered: u64,
    /// Compact a node's log (checkpoint and rewrite) once it holds more
    /// than this many bytes, after a batch of effects; `None`: never.
    pub compact_bytes: Option<u64>,
    /// Compactions done.
    pub compactions: u64,
}

impl Sim {
    /// Coordinator 0 and one bank per entry of `banks` (ids 1, 2, ...).
    pub fn new(seed: u64, banks: Vec<Bank>) -> Sim {
        Sim::with_configs(
            seed,
            banks,
            CoordinatorConfig::default(),
            ParticipantConfig::default(),
        )
    }

    /// Like [`Sim::new`] with chosen timers.
    pub fn with_configs(
        seed: u64,
        banks: Vec<Bank>,
        ccfg: CoordinatorConfig,
        pcfg: ParticipantConfig,
    ) -> Sim {
        let t0 = Instant::now();
        let mut nodes = BTreeMap::new();
        nodes.insert(
            0,
            Node::new(0, Role::Coord(Some(Coordinator::new(0, ccfg.clone())))),
        );
        for (i, bank) in banks.into_iter().enumerate() {
            let id = i as NodeId + 1;
            let p = Participant::new(id, bank.clone(), pcfg.clone());
            nodes.insert(id, Node::new(id, Role::Part(Some(p), bank)));
        }
        Sim {
            t0,
            now: t0,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            rng: Rng::new(seed),
            compact_bytes: None,
            compactions: 0,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            dup: 0.0,
            loss: 0.0,
            filter: None,
            sent: Vec::new(),
            trace: Vec::new(),
            work: BTreeMap::new(),
            ccfg,
            pcfg,
            delivered: 0,
        }
    }

    pub fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[&id]
    }

    /// Schedules a crash of `id` just before its `step`-th step.
    pub fn crash_at(&mut self, id: NodeId, step: u64, downtime: Duration) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.crash_at = Some(step);
            n.downtime = downtime;
        }
    }

    /// Begins a transfer at the coordinator (if it is up).
    pub fn begin(&mut self, work: Vec<(NodeId, Vec<u8>)>) -> Option<TxId> {
        let now = self.now;
        let node = self.nodes.get_mut(&0)?;
        let Role::Coord(Some(c)) = &mut node.role else {
            return None;
        };
        let tx = c.begin(now, NONCE, work.clone())?;
        self.work.insert(tx, work);
        self.process(0);
        Some(tx)
    }

    /// Crashes `id` now (outside any step).
    pub fn crash_now(&mut self, id: NodeId, downtime: Duration) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.downtime = downtime;
        }
        self.crash(id);
    }

    fn crash(&mut self, id: NodeId) {
        let now = self.now;
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        n.crashes += 1;
        n.crash_at = None;
        n.wal.crash();
        n.down_until = Some(now + n.downtime);
        match &mut n.role {
            Role::Coord(c) => *c = None,
            Role::Part(p, _) => *p = None,
        }
        self.trace
            .push((now - self.t0, id, n.steps, "CRASH".into()));
    }

    fn recover(&mut self, id: NodeId) {
        let now = self.now;
        let (ccfg, pcfg) = (self.ccfg.clone(), self.pcfg.clone());
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        n.down_until = None;
        let records = n.wal.replay().expect("replay");
        match &mut n.role {
            Role::Coord(c) => *c = Some(Coordinator::recover(id, ccfg, &records, now)),
            Role::Part(p, initial) => {
                *p = Some(
                    Participant::recover(id, initial.clone(), pcfg, &records, now)
                        .expect("recover"),
                )
            }
        }
        self.trace
            .push((now - self.t0, id, n.steps, "RECOVER".into()));
        self.process(id);
    }

    /// Counts a step of `id`; true if the node must crash before doing it.
    fn step(&mut self, id: NodeId, what: &str) -> bool {
        let now = self.now;
        let n = self.nodes.get_mut(&id).expect("node");
        n.steps += 1;
        self.trace
            .push((now - self.t0, id, n.steps, what.to_string()));
        if n.crash_at == Some(n.steps) {
            self.crash(id);
            return true;
        }
        false
    }

    /// Executes the node's effects step by step (the driver contract), with
    /// crash injection and write-ahead checks.
    pub fn process(&mut self, id: NodeId) {
        let effects = match self.nodes.get_mut(&id) {
            Some(n) if n.is_up() => n.drain(),
            _ => return,
        };
        let mut dirty = false;
        for effect in effects {
            if let Effect::Log(rec) = &effect {
                if self.step(id, &format!("append {rec:?}")) {
                    return;
                }
                self.nodes
                    .get_mut(&id)
                    .expect("node")
                    .wal
                    .append(rec)
                    .expect("append");
                dirty = true;
                continue;
            }
            if dirty {
                if self.step(id, "sync") {
                    return;
                }
                self.nodes
                    .get_mut(&id)
                    .expect("node")
                    .wal
                    .sync()
                    .expect("sync");
                dirty = false;
            }
            match effect {
                Effect::Send { to, msg } => {
                    if self.step(id, &format!("send {to} {msg:?}")) {
                        return;
                    }
                    self.check_write_ahead(id, &msg);
                    self.send(id, to, msg);
                }
                Effect::Outcome { tx, commit } => {
                    let n = self.nodes.get_mut(&id).expect("node");
                    if let Some(&before) = n.outcomes.get(&tx) {
                        assert_eq!(before, commit, "node {id} changed its outcome of {tx}");
                    }
                    n.outcomes.insert(tx, commit);
                }
                Effect::Blocked { tx } => {
                    let now = self.now;
                    self.nodes
                        .get_mut(&id)
                        .expect("node")
                        .blocked
                        .entry(tx)
                        .or_insert(now);
                }
                Effect::Completed { .. } | Effect::Log(_) => {}
            }
        }
        if dirty {
            if self.step(id, "sync") {
                return;
            }
            self.nodes
                .get_mut(&id)
                .expect("node")
                .wal
                .sync()
                .expect("sync");
        }
        self.maybe_compact(id);
    }

    /// Compaction between batches, as a driver does it: the node's
    /// checkpoint replaces its log (atomically: a crash before this step
    /// keeps the old log, after it the new one).
    fn maybe_compact(&mut self, id: NodeId) {
        let Some(limit) = self.compact_bytes else {
            return;
        };
        let n = &self.nodes[&id];
        if n.wal.size() <= limit {
            return;
        }
        let rec = match &n.role {
            Role::Coord(Some(c)) => c.checkpoint_record(),
            Role::Part(Some(p), _) => p.checkpoint_record(),
            _ => return,
        };
        if self.step(id, "compact") {
            return;
        }
        let n = self.nodes.get_mut(&id).expect("node");
        n.wal.rewrite(&[rec]).expect("rewrite");
        self.compactions += 1;
    }

    /// A message may only announce what the sender's log already holds durably.
    fn check_write_ahead(&self, id: NodeId, msg: &Msg) {
        let durable = self.nodes[&id].wal.durable_records();
        let ok = msg.backed_by(&durable);
        assert!(ok, "node {id} sent {msg:?} before logging it durably");
    }

    pub fn send(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        self.sent.push((from, to, msg.clone()));
        if let Some(f) = self.filter.as_mut() {
            if f(from, to, &msg) {
                return;
            }
        }
        if self.rng.chance(self.loss) {
            return;
        }
        let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            self.inject(from, to, msg.clone());
        }
    }

    /// Puts a message on the wire with a random delay (no filter, no loss).
    pub fn inject(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        let span = (self.max_delay - self.min_delay).as_micros() as u64;
        let delay = self.min_delay + Duration::from_micros(self.rng.below(span + 1));
        self.seq += 1;
        self.queue
            .insert((self.now + delay, self.seq), (from, to, msg));
    }

    fn next_event(&self) -> Option<Instant> {
        let mut t = self.queue.keys().next().map(|(t, _)| *t);
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        for n in self.nodes.values() {
            consider(n.down_until);
            match &n.role {
                Role::Coord(Some(c)) => consider(c.poll_timeout()),
                Role::Part(Some(p), _) => consider(p.poll_timeout()),
                _ => {}
            }
        }
        t
    }

    /// Runs events up to `end` (virtual time).
    pub fn run_until(&mut self, end: Instant) {
        while let Some(t) = self.next_event() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            let now = self.now;
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for &id in &ids {
                if self.nodes[&id].down_until.is_some_and(|d| d <= now) {
                    self.recover(id);
                }
            }
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let (from, to, msg) = entry.remove();
                let Some(n) = self.nodes.get_mut(&to) else {
                    continue;
                };
                if !n.is_up() {
                    continue;
                }
                self.delivered += 1;
                match &mut n.role {
                    Role::Coord(Some(c)) if msg.to_coordinator() => {
                        c.handle_message(now, from, msg)
                    }
                    Role::Part(Some(p), _) if !msg.to_coordinator() => {
                        p.handle_message(now, from, msg)
                    }
                    _ => continue,
                }
                self.process(to);
            }
            for &id in &ids {
                let n = self.nodes.get_mut(&id).expect("node");
                match &mut n.role {
                    Role::Coord(Some(c)) if c.poll_timeout().is_some_and(|t| t <= now) => {
                        c.handle_timeout(now)
                    }
                    Role::Part(Some(p), _) if p.poll_timeout().is_some_and(|t| t <= now) => {
                        p.handle_timeout(now)
                    }
                    _ => continue,
                }
                self.process(id);
            }
        }
        self.now = self.now.max(end);
    }

    /// Runs until nothing is pending (no message, timer or recovery), or `limit`.
    pub fn run_to_quiescence(&mut self, limit: Duration) -> bool {
        let end = self.t0 + limit;
        self.run_until(end);
        self.next_event().is_none()
    }

    /// Queues a checkpoint at participant `id` and executes it.
    pub fn checkpoint(&mut self, id: NodeId) {
        if let Some(Node {
            role: Role::Part(Some(p), _),
            ..
        }) = self.nodes.get_mut(&id)
        {
            p.checkpoint();
        }
        self.process(id);
    }

    /// Announces `tx` to participant `id` before its VOTE-REQUEST.
    pub fn expect(&mut self, id: NodeId, tx: TxId) {
        let now = self.now;
        if let Some(Node {
            role: Role::Part(Some(p), _),
            ..
        }) = self.nodes.get_mut(&id)
        {
            p.expect(now, tx);
        }
    }

    pub fn coord_state(&self, tx: TxId) -> Option<CoordState> {
        self.node(0).coordinator().and_then(|c| c.state(tx))
    }

    pub fn part_state(&self, id: NodeId, tx: TxId) -> Option<PartState> {
        self.node(id).participant().and_then(|p| p.status(tx))
    }

    pub fn bank(&self, id: NodeId) -> &Bank {
        self.node(id)
            .participant()
            .expect("participant up")
            .resource()
    }

    /// The end-of-run invariants: everyone up, and the shared audit
    /// ([`rpc::twopc::audit`]): one outcome per transaction everywhere,
    /// everything decided, balances = initial + committed work, money
    /// conserved, no locks, justified blocks, and each participant's log
    /// recovers to exactly its live state.
    pub fn check_final(&self, initial: &[Bank]) {
        for n in self.nodes.values() {
            assert!(n.is_up(), "node {} still down", n.id);
        }
        let coord = self.node(0).coordinator().expect("coordinator up");
        let mut run = RunEnd {
            work: self.work.clone(),
            ..RunEnd::default()
        }
        .with_coordinator(coord);
        for (i, bank) in initial.iter().enumerate() {
            let id = i as NodeId + 1;
            let n = self.node(id);
            let live = n.participant().expect("participant up");
            let mut end = ParticipantEnd::observe(bank, live, n.wal.durable_records());
            end.blocked = n.blocked.keys().copied().collect();
            run.participants.insert(id, end);
        }
        for n in self.nodes.values() {
            run.reported.insert(n.id, n.outcomes.clone());
        }
        let report = audit::audit(&run, self.now);
        assert!(report.is_clean(), "{report}{}", self.dump());
    }

    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (t, id, step, what) in self.trace.iter().rev().take(60).rev() {
            s.push_str(&format!(
                "{:>8.3}s node {id} step {step}: {what}\n",
                t.as_secs_f64()
            ));
        }
        s
    }
}

impl Node {
    fn new(id: NodeId, role: Role) -> Node {
        Node {
            id,
            role,
            wal: MemWal::new(),
            down_until: None,
            steps: 0,
            crash_at: None,
            downtime: Duration::ZERO,
            crashes: 0,
            outcomes: BTreeMap::new(),
            blocked: BTreeMap::new(),
        }
    }
}

pub fn distinct<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
    items.iter().cloned().collect()
}
