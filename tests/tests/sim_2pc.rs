//! Two-phase commit over ustack TCP in the simulated network, with crashes.
//!
//! A coordinator (node 0) and two banks (nodes 1 and 2) each run on their
//! own simulated host; protocol messages are `TwoPcPeer::deliver` RPCs over
//! TCP connections between the stacks. A node can be made to crash just
//! before any step of its driver (log append, log sync, send, report), as a
//! process (its stack closes its sockets) or as a machine (stack and
//! connections vanish, the host is silent, then reboots with a fresh stack);
//! its `MemWal` keeps what was synced and nothing else.
//!
//! The crash-point test runs each scenario once without failures to count
//! every node's steps, then once per (node, step, crash mode, downtime),
//! and checks after each run that every node reached the same outcome for
//! every transaction, that money is conserved, that no lock is left, that
//! nothing is undecided, and that participants block only when they were
//! all READY and the coordinator was down before the decision reached any
//! of them.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rpc::twopc::audit::{self, ParticipantEnd, RunEnd};
use rpc::twopc::{
    Bank, BankOp, CoordState, CoordinatorConfig, NodeId, PartState, ParticipantConfig, TxId,
};
use sim::sim::rpc_apps::{CrashMode, CrashPlan, TwoPcNode, TwoPcNodeSpec, TwoPcRole, Work, tx_id};
use sim::sim::{AppId, LinkConfig, Sim, host_config, seed_from_env};
use stack::InterfaceConfig;

const PORT: u16 = 7000;
const COORDINATOR: NodeId = 0;
/// Transactions start here, once the nodes' connections are up.
const START_MS: u64 = 100;
/// Virtual time allowed for everything to be decided everywhere.
const LIMIT: Duration = Duration::from_secs(180);
const SHORT: Duration = Duration::from_millis(300);
/// Longer than the participants' patience (decision timeout + peer queries)
/// and the coordinator's vote timeout.
const LONG: Duration = Duration::from_secs(6);

fn banks() -> Vec<Bank> {
    vec![
        Bank::new([("alice", 100), ("carol", 10)]),
        Bank::new([("bob", 50), ("dave", 0)]),
    ]
}

/// Host `n`'s configuration, with neighbours confirmed for an hour.
///
/// The stack's neighbour cache walks a `HashSet` (an order that changes
/// from process to process) when several entries need ARP in one poll, and
/// on impaired links that order decides which frame each random draw of a
/// link applies to: such a run would not replay from its seed. With a long
/// reachable time, entries learned at start-up are never re-probed (nor
/// dropped after failed probes while a peer is down); fresh stacks after a
/// reboot stagger their first connections (see `TwoPcNode`).
fn node_host_config(n: u8) -> InterfaceConfig {
    let mut cfg = host_config(n);
    cfg.neighbor.reachable_time = Duration::from_secs(3600);
    cfg
}

/// The seed stream ([`Sim::derive_seed`]) of the random test's workload
/// and crashes (the nodes' own streams are numbered from 0).
const WORKLOAD_STREAM: u64 = 1 << 32;

/// The first transaction the coordinator begins.
fn tx1() -> TxId {
    tx_id(COORDINATOR, 1)
}

struct Cluster {
    sim: Sim,
    apps: Vec<AppId>,
    initial: Vec<Bank>,
    scheduled: usize,
    /// Assert that participants block only while the coordinator is down
    /// (holds on clean links; on lossy ones a slow coordinator looks dead).
    strict_blocking: bool,
}

impl Cluster {
    /// Coordinator 0 and one bank per entry of `initial` (nodes 1, 2, ...),
    /// host `id + 1` each, on one switch whose ports have `link`.
    fn new(seed: u64, initial: Vec<Bank>, link: LinkConfig) -> Cluster {
        Cluster::with_compaction(seed, initial, link, None)
    }

    /// Like [`Cluster::new`], every node compacting its log past
    /// `compact_bytes`, the coordinator keeping 2 ended transactions.
    fn with_compaction(
        seed: u64,
        initial: Vec<Bank>,
        link: LinkConfig,
        compact_bytes: Option<u64>,
    ) -> Cluster {
        let mut sim = Sim::new(seed);
        let n = initial.len() + 1;
        let hosts: Vec<_> = (0..n)
            .map(|i| sim.add_host(node_host_config(i as u8 + 1)))
            .collect();
        sim.add_switch(&hosts, link);
        let peers: BTreeMap<NodeId, SocketAddrV4> = (0..n)
            .map(|i| {
                let addr = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, i as u8 + 1), PORT);
                (i as NodeId, addr)
            })
            .collect();
        let mut apps = Vec::new();
        for (i, &h) in hosts.iter().enumerate() {
            let role = match i {
                0 => TwoPcRole::Coordinator(CoordinatorConfig {
                    keep_finished: if compact_bytes.is_some() { 2 } else { 256 },
                    ..CoordinatorConfig::default()
                }),
                _ => TwoPcRole::Participant {
                    bank: initial[i - 1].clone(),
                    config: ParticipantConfig::default(),
                },
            };
            let mut spec = TwoPcNodeSpec::new(
                i as NodeId,
                role,
                PORT,
                peers.clone(),
                node_host_config(i as u8 + 1),
                sim.derive_seed(i as u64),
            );
            spec.compact_bytes = compact_bytes;
            let node = TwoPcNode::start(sim.iface(h), spec).unwrap();
            apps.push(sim.add_app(h, node));
        }
        Cluster {
            sim,
            apps,
            initial,
            scheduled: 0,
            strict_blocking: true,
        }
    }

    fn node(&mut self, id: NodeId) -> &mut TwoPcNode {
        self.sim.app::<TwoPcNode>(self.apps[id as usize])
    }

    fn ids(&self) -> Vec<NodeId> {
        (0..self.apps.len() as NodeId).collect()
    }

    fn at(&self, ms: u64) -> Instant {
        self.sim.start() + Duration::from_millis(ms)
    }

    fn begin_at(&mut self, ms: u64, work: Work) {
        let at = self.at(ms);
        self.node(COORDINATOR).begin_at(at, work);
        self.scheduled += 1;
    }

    fn run_until_ms(&mut self, ms: u64) {
        let d = self.at(ms).saturating_duration_since(self.sim.now());
        self.sim.run_for(d);
    }

    fn part_state(&mut self, id: NodeId, tx: TxId) -> Option<PartState> {
        self.node(id).participant().and_then(|p| p.status(tx))
    }

    fn coord_state(&mut self, tx: TxId) -> Option<CoordState> {
        self.node(COORDINATOR)
            .coordinator()
            .and_then(|c| c.state(tx))
    }

    fn bank(&mut self, id: NodeId) -> Bank {
        self.node(id)
            .participant()
            .expect("participant up")
            .resource()
            .clone()
    }

    /// The transactions begun and their work (a sequence number reused
    /// after a crash that lost its BEGIN names the later transaction: the
    /// earlier one never reached anyone).
    fn begun(&mut self) -> BTreeMap<TxId, Work> {
        self.node(COORDINATOR)
            .history
            .begun
            .iter()
            .cloned()
            .collect()
    }

    /// Runs until [`settled`] and still settled two seconds later (late
    /// messages must not change anything; a crash planned at a late step
    /// starts another round); false if that does not happen within `limit`.
    fn run_until_settled(&mut self, limit: Duration) -> bool {
        let (apps, scheduled) = (self.apps.clone(), self.scheduled);
        let deadline = self.sim.now() + limit;
        loop {
            let left = deadline.saturating_duration_since(self.sim.now());
            if !self
                .sim
                .run_until(|sim| settled(sim, &apps, scheduled), left)
            {
                return false;
            }
            self.sim.run_for(Duration::from_secs(2));
            if settled(&mut self.sim, &apps, scheduled) {
                return true;
            }
        }
    }

    /// The last steps of every node, in time order.
    fn dump(&mut self) -> String {
        let start = self.sim.start();
        let mut all = Vec::new();
        for id in self.ids() {
            let h = &self.node(id).history;
            for (t, step, what) in &h.trace {
                all.push((*t, id, *step, what.clone()));
            }
            for (t, step, mode) in &h.crashes {
                all.push((*t, id, *step, format!("CRASH ({mode:?})")));
            }
            for t in &h.restarts {
                all.push((*t, id, 0, "RESTART".to_string()));
            }
        }
        all.sort_by_key(|(t, id, step, _)| (*t, *id, *step));
        let mut s = String::new();
        for id in self.ids() {
            let v = &self.node(id).history.violations;
            if !v.is_empty() {
                s.push_str(&format!("node {id} violations: {v:?}\n"));
            }
        }
        for (t, id, step, what) in all.iter().rev().take(80).rev() {
            s.push_str(&format!(
                "{:>9.3}s node {id} step {step}: {what}\n",
                (*t - start).as_secs_f64()
            ));
        }
        s
    }

    /// The end-of-run invariants: everyone up without violations, the
    /// shared audit ([`rpc::twopc::audit`]: one outcome everywhere, all
    /// decided, balances = initial + committed work, money conserved, no
    /// locks, blocks only with every participant READY, logs recover to the
    /// live banks), and on clean links blocks only while the coordinator
    /// was down.
    fn check_final(&mut self, context: &str) {
        let dump = self.dump();
        let ids = self.ids();
        for &id in &ids {
            let n = self.node(id);
            assert!(n.is_up(), "{context}: node {id} still down\n{dump}");
            assert!(
                n.history.violations.is_empty(),
                "{context}: node {id}: {:?}\n{dump}",
                n.history.violations
            );
        }
        let work = self.begun();
        let coordinator = self.node(COORDINATOR).coordinator().expect("up");
        let mut run = RunEnd {
            work,
            ..RunEnd::default()
        }
        .with_coordinator(coordinator);
        for (i, bank) in self.initial.clone().iter().enumerate() {
            let id = i as NodeId + 1;
            let n = self.node(id);
            let live = n.participant().expect("participant up");
            let mut end = ParticipantEnd::observe(bank, live, n.history.wal.durable_records());
            end.blocked = n.history.blocked.iter().map(|(tx, _)| *tx).collect();
            run.participants.insert(id, end);
        }
        for &id in &ids {
            let outcomes = self.node(id).history.outcomes.clone();
            run.reported.insert(id, outcomes);
        }
        let report = audit::audit(&run, self.sim.now());
        assert!(report.is_clean(), "{context}:\n{report}{dump}");
        if self.strict_blocking {
            self.check_blocking_while_down(context, &dump);
        }
    }

    /// On clean links, every block report came while the coordinator was
    /// down, or had just come back and was still reconnecting (the audit
    /// checks that every participant was READY).
    fn check_blocking_while_down(&mut self, context: &str, dump: &str) {
        let c = &self.node(COORDINATOR).history;
        let down: Vec<(Instant, Instant)> = c
            .crashes
            .iter()
            .enumerate()
            .map(|(i, (t, ..))| (*t, c.restarts.get(i).copied().unwrap_or(*t)))
            .collect();
        for id in self.ids().into_iter().skip(1) {
            for &(tx, at) in &self.node(id).history.blocked {
                let slack = Duration::from_secs(3);
                assert!(
                    down.iter()
                        .any(|&(from, to)| from <= at && at <= to + slack),
                    "{context}: node {id} blocked on {tx} with the coordinator up\n{dump}"
                );
            }
        }
    }

    fn blocked_reports(&mut self) -> usize {
        self.ids()
            .into_iter()
            .skip(1)
            .map(|id| self.node(id).history.blocked.len())
            .sum()
    }
}

/// Everyone up with no timed crash to come, every scheduled transaction
/// begun (or refused while the coordinator was down) and ended, every
/// participant decided.
fn settled(sim: &mut Sim, apps: &[AppId], scheduled: usize) -> bool {
    if apps.iter().any(|&a| {
        let n = sim.app::<TwoPcNode>(a);
        !n.is_up() || n.timed_crashes_pending() > 0
    }) {
        return false;
    }
    let c = sim.app::<TwoPcNode>(apps[COORDINATOR as usize]);
    let h = &c.history;
    if h.begun.len() + h.rejected_begins as usize != scheduled {
        return false;
    }
    let Some(coord) = c.coordinator() else {
        return false;
    };
    if coord
        .transactions()
        .any(|(_, s)| !matches!(s, CoordState::Ended { .. }))
    {
        return false;
    }
    apps.iter().skip(1).all(|&a| {
        sim.app::<TwoPcNode>(a).participant().is_some_and(|p| {
            p.transactions()
                .iter()
                .all(|(_, s)| matches!(s, PartState::Committed | PartState::Aborted))
        })
    })
}

type Scenario = (&'static str, Vec<Bank>, Vec<Work>);

fn scenarios() -> Vec<Scenario> {
    let three = {
        let mut b = banks();
        b.push(Bank::new([("erin", 5)]));
        b
    };
    vec![
        (
            "commit",
            banks(),
            vec![BankOp::transfer(1, "alice", 2, "bob", 30)],
        ),
        // Bank 1 votes abort: insufficient funds.
        (
            "vote abort",
            banks(),
            vec![BankOp::transfer(1, "alice", 2, "bob", 101)],
        ),
        // Two transactions at once, on disjoint accounts: their steps
        // interleave at every node.
        (
            "two transactions",
            banks(),
            vec![
                BankOp::transfer(1, "alice", 2, "bob", 30),
                BankOp::transfer(1, "carol", 2, "dave", 5),
            ],
        ),
        // Three participants in one transaction.
        (
            "three banks",
            three,
            vec![vec![
                (1, BankOp::work(&[("alice", -30)])),
                (2, BankOp::work(&[("bob", 20)])),
                (3, BankOp::work(&[("erin", 10)])),
            ]],
        ),
    ]
}

fn cluster_for(seed: u64, banks: Vec<Bank>, txs: &[Work]) -> Cluster {
    let mut c = Cluster::new(seed, banks, LinkConfig::default());
    for w in txs {
        c.begin_at(START_MS, w.clone());
    }
    c
}

/// A failure-free run: the step count of every node, and the trace of the
/// coordinator.
fn clean_run(seed: u64, banks: Vec<Bank>, txs: &[Work]) -> (Vec<u64>, Vec<String>) {
    let mut c = cluster_for(seed, banks, txs);
    c.run_until_ms(START_MS - 1);
    for id in c.ids() {
        assert!(c.node(id).connected_to_all(), "node {id} not connected");
    }
    assert!(c.run_until_settled(LIMIT), "clean run\n{}", c.dump());
    c.check_final("clean run");
    assert_eq!(c.blocked_reports(), 0);
    let steps = c
        .ids()
        .into_iter()
        .map(|id| c.node(id).history.steps)
        .collect();
    let trace = c
        .node(COORDINATOR)
        .history
        .trace
        .iter()
        .map(|(_, _, w)| w.clone())
        .collect();
    (steps, trace)
}

/// The 1-based step at which the coordinator first does `what`.
fn step_of(trace: &[String], what: &str) -> u64 {
    find_step(trace, |w| w.starts_with(what)).unwrap_or_else(|| panic!("no step {what:?}"))
}

fn find_step(trace: &[String], pred: impl Fn(&str) -> bool) -> Option<u64> {
    trace.iter().position(|w| pred(w)).map(|i| i as u64 + 1)
}

/// The transactions a coordinator crash before step `k` leaves with every
/// participant READY and none knowing the decision: in the clean run the
/// transaction commits (every participant votes commit), and by step `k`
/// every VOTE-REQUEST had been sent and no decision yet.
fn blocking_txs(trace: &[String], k: u64) -> Vec<TxId> {
    (1..=4)
        .map(|seq| tx_id(COORDINATOR, seq))
        .filter(|tx| {
            let name = format!("{tx:?}");
            let about = |w: &str, what: &str| w.contains(what) && w.contains(&name);
            let commits = find_step(trace, |w| {
                about(w, "append Global") && w.contains("commit: true")
            })
            .is_some();
            let last_prepare = trace
                .iter()
                .rposition(|w| about(w, " Prepare {"))
                .map(|i| i as u64 + 1);
            let first_decision = find_step(trace, |w| about(w, " Decision {"));
            matches!((last_prepare, first_decision), (Some(p), Some(d)) if commits && p < k && k <= d)
        })
        .collect()
}

#[test]
fn crash_at_every_step_of_every_node() {
    let seed = seed_from_env(7);
    let medium = Duration::from_millis(1_500);
    let combos = [
        (CrashMode::Process, SHORT),
        (CrashMode::Process, medium),
        (CrashMode::Process, LONG),
        (CrashMode::Machine, SHORT),
        (CrashMode::Machine, medium),
        (CrashMode::Machine, LONG),
    ];
    let wall = Instant::now();
    let (mut runs, mut points, mut blocked_runs) = (0, 0, 0);
    for (name, banks, txs) in scenarios() {
        let (steps, trace) = clean_run(seed, banks.clone(), &txs);
        eprintln!("{name}: steps per node {steps:?}");
        for victim in 0..steps.len() as NodeId {
            for k in 1..=steps[victim as usize] {
                points += 1;
                for (mode, downtime) in combos {
                    let context = format!(
                        "{name}: node {victim} crashes before step {k} ({mode:?}, down {downtime:?})"
                    );
                    let mut c = cluster_for(seed, banks.clone(), &txs);
                    c.node(victim).crash_at_step(CrashPlan {
                        at_step: k,
                        mode,
                        downtime,
                    });
                    assert!(
                        c.run_until_settled(LIMIT),
                        "{context}: not settled\n{}",
                        c.dump()
                    );
                    assert_eq!(
                        c.node(victim).history.crashes.len(),
                        1,
                        "{context}: the crash did not happen"
                    );
                    c.check_final(&context);
                    // Blocking happens exactly when every participant is
                    // READY and the coordinator stays down past their
                    // patience (decision timeout + peer queries).
                    let mut want: Vec<TxId> = Vec::new();
                    if victim == COORDINATOR && downtime == LONG {
                        for tx in blocking_txs(&trace, k) {
                            let participants = txs[tx.seq as usize - 1].len();
                            want.extend(std::iter::repeat_n(tx, participants));
                        }
                    }
                    let mut got: Vec<TxId> = c
                        .ids()
                        .into_iter()
                        .skip(1)
                        .flat_map(|id| c.node(id).history.blocked.clone())
                        .map(|(tx, _)| tx)
                        .collect();
                    got.sort();
                    assert_eq!(got, want, "{context}: blocked reports\n{}", c.dump());
                    blocked_runs += usize::from(!want.is_empty());
                    runs += 1;
                }
            }
        }
    }
    eprintln!(
        "{points} crash points, {runs} runs ({blocked_runs} blocked until the coordinator \
         returned) in {:.1} s",
        wall.elapsed().as_secs_f64()
    );
    assert!(points >= 120);
    // The windows of "commit", of each of the "two transactions" and of
    // "three banks" (LONG downtime, both crash modes).
    assert!(blocked_runs >= 16, "{blocked_runs}");
}

#[test]
fn two_nodes_crash_at_every_pair_of_steps() {
    let seed = seed_from_env(9);
    let (_, banks, txs) = scenarios().remove(0);
    let (steps, _) = clean_run(seed, banks.clone(), &txs);
    let mut runs = 0;
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        for ka in 1..=steps[a as usize] {
            for kb in 1..=steps[b as usize] {
                let context = format!("node {a} before step {ka}, node {b} before step {kb}");
                let mut c = cluster_for(seed, banks.clone(), &txs);
                c.node(a).crash_at_step(CrashPlan {
                    at_step: ka,
                    mode: CrashMode::Machine,
                    downtime: Duration::from_millis(700),
                });
                c.node(b).crash_at_step(CrashPlan {
                    at_step: kb,
                    mode: CrashMode::Process,
                    downtime: Duration::from_secs(3),
                });
                assert!(c.run_until_settled(LIMIT), "{context}\n{}", c.dump());
                c.check_final(&context);
                runs += 1;
            }
        }
    }
    eprintln!("{runs} pairs of crash points");
    assert!(runs >= 150);
}

/// Crash the coordinator (for 20 s) just before step `what`; returns the
/// cluster at 15 s with one transfer in flight.
fn coordinator_down_at(what: &str, mode: CrashMode) -> Cluster {
    let txs = vec![BankOp::transfer(1, "alice", 2, "bob", 30)];
    let (_, trace) = clean_run(seed_from_env(3), banks(), &txs);
    let k = step_of(&trace, what);
    let mut c = cluster_for(seed_from_env(3), banks(), &txs);
    c.node(COORDINATOR).crash_at_step(CrashPlan {
        at_step: k,
        mode,
        downtime: Duration::from_secs(20),
    });
    c.run_until_ms(15_000);
    c
}

fn assert_blocked(c: &mut Cluster) {
    assert!(!c.node(COORDINATOR).is_up());
    for p in [1, 2] {
        assert_eq!(
            c.part_state(p, tx1()),
            Some(PartState::Blocked),
            "participant {p}\n{}",
            c.dump()
        );
        let reports: Vec<TxId> = c.node(p).history.blocked.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            reports,
            vec![tx1()],
            "participant {p} reports the block once"
        );
        assert!(
            c.bank(p).locked() > 0,
            "a blocked participant keeps its locks"
        );
        // Still asking: its RPC client keeps trying the coordinator.
        let stats = c.node(p).client_stats()[&COORDINATOR];
        assert!(
            stats.connect_attempts > 1 || stats.requests_sent > 3,
            "{stats:?}"
        );
    }
}

#[test]
fn all_ready_and_coordinator_down_blocks_until_it_returns_then_aborts() {
    for mode in [CrashMode::Process, CrashMode::Machine] {
        // Just before logging the decision: both participants READY, the
        // decision is lost with the coordinator.
        let mut c = coordinator_down_at("append Global", mode);
        assert_blocked(&mut c);
        assert!(c.run_until_settled(LIMIT), "{mode:?}\n{}", c.dump());
        c.check_final(&format!("{mode:?}"));
        // Recovered in WAIT: the coordinator aborts.
        assert_eq!(
            c.coord_state(tx1()),
            Some(CoordState::Ended { committed: false })
        );
        // Bank 1 aborted, then forgot it (the end-of-transaction notice).
        assert_eq!(c.node(1).history.outcomes.get(&tx1()), Some(&false));
        assert!(c.node(1).participant().expect("up").forgot(tx1()));
        assert_eq!(c.bank(1).balance("alice"), Some(100));
    }
}

#[test]
fn all_ready_and_coordinator_down_after_logging_commit_blocks_then_commits() {
    for mode in [CrashMode::Process, CrashMode::Machine] {
        // COMMIT is durable at the coordinator but was sent to nobody.
        let mut c = coordinator_down_at("send 1 Decision", mode);
        assert_blocked(&mut c);
        assert!(c.run_until_settled(LIMIT), "{mode:?}\n{}", c.dump());
        c.check_final(&format!("{mode:?}"));
        assert_eq!(
            c.coord_state(tx1()),
            Some(CoordState::Ended { committed: true })
        );
        assert_eq!(c.bank(1).balance("alice"), Some(70));
        assert_eq!(c.bank(2).balance("bob"), Some(80));
    }
}

#[test]
fn a_participant_still_in_init_lets_the_ready_one_abort_without_blocking() {
    let txs = vec![BankOp::transfer(1, "alice", 2, "bob", 30)];
    let seed = seed_from_env(5);
    let (_, trace) = clean_run(seed, banks(), &txs);
    // The coordinator dies after its VOTE-REQUEST to bank 1 and before the
    // one to bank 2, and stays down for 30 s.
    let k = step_of(&trace, "send 2 Prepare");
    for mode in [CrashMode::Process, CrashMode::Machine] {
        let mut c = cluster_for(seed, banks(), &txs);
        c.node(2).expect(tx1());
        c.node(COORDINATOR).crash_at_step(CrashPlan {
            at_step: k,
            mode,
            downtime: Duration::from_secs(30),
        });
        c.run_until_ms(START_MS + 500);
        assert_eq!(c.part_state(1, tx1()), Some(PartState::Ready));
        assert_eq!(c.part_state(2, tx1()), Some(PartState::Init));
        // Bank 1 asks the coordinator (down), then bank 2, which is still
        // in INIT: bank 2 aborts on the spot and so does bank 1. All this
        // before bank 2's own PREPARE timeout (5 s).
        c.run_until_ms(4_000);
        assert!(!c.node(COORDINATOR).is_up());
        assert_eq!(c.part_state(2, tx1()), Some(PartState::Aborted));
        assert_eq!(
            c.part_state(1, tx1()),
            Some(PartState::Aborted),
            "{mode:?}: READY learns ABORT from a peer\n{}",
            c.dump()
        );
        assert_eq!(c.bank(1).locked(), 0);
        assert_eq!(c.blocked_reports(), 0, "never blocked");
        assert!(c.run_until_settled(LIMIT), "{}", c.dump());
        c.check_final(&format!("{mode:?}"));
        assert_eq!(
            c.coord_state(tx1()),
            Some(CoordState::Ended { committed: false })
        );
    }
}

#[test]
fn random_crashes_over_a_duplicating_reordering_lossy_network() {
    let link = LinkConfig::with_latency_of(Duration::from_millis(2))
        .with_jitter(Duration::from_millis(1))
        .with_loss(0.01)
        .with_dup(0.2)
        .with_reorder(0.05);
    // Debits mostly from the well-funded accounts, so that most
    // transactions can commit unless a crash or a lock conflict aborts them.
    let accounts = [["alice", "alice", "carol"], ["bob", "bob", "dave"]];
    let (mut crashes, mut committed, mut total) = (0, 0, 0);
    // SIM_SEED=N runs seeds N, N+1, ... (a failure names its seed).
    let master = seed_from_env(1000);
    for i in 0..40u64 {
        let seed = master.wrapping_add(i);
        let mut c = Cluster::new(seed, banks(), link.clone());
        c.strict_blocking = false;
        let mut rng = SmallRng::seed_from_u64(c.sim.derive_seed(WORKLOAD_STREAM));
        let mut next = |n: u64| rng.random_range(0..n);
        for i in 0..5u64 {
            let from = 1 + (next(2) as NodeId);
            let to = 3 - from;
            let fa = accounts[from as usize - 1][next(3) as usize];
            let ta = accounts[to as usize - 1][next(3) as usize];
            let amount = 1 + next(20) as i64;
            c.begin_at(
                START_MS + i * 400 + next(300),
                BankOp::transfer(from, fa, to, ta, amount),
            );
        }
        for id in 0..3 {
            if next(10) < 7 {
                let mode = if next(2) == 0 {
                    CrashMode::Process
                } else {
                    CrashMode::Machine
                };
                let downtime = Duration::from_millis(100 + next(7_000));
                c.node(id).crash_at_step(CrashPlan {
                    at_step: 1 + next(25),
                    mode,
                    downtime,
                });
            }
            // And sometimes at a random time, between steps (with messages
            // in flight on its connections).
            if next(10) < 3 {
                let at = c.at(START_MS + next(3_000));
                let downtime = Duration::from_millis(100 + next(3_000));
                c.node(id).crash_at_time(at, CrashMode::Machine, downtime);
            }
        }
        let context = format!("seed {seed}");
        assert!(c.run_until_settled(LIMIT), "{context}\n{}", c.dump());
        c.check_final(&context);
        let begun = c.begun();
        committed += begun
            .keys()
            .filter(|tx| c.coord_state(**tx).and_then(CoordState::decision) == Some(true))
            .count();
        total += begun.len();
        crashes += c
            .ids()
            .into_iter()
            .map(|id| c.node(id).history.crashes.len())
            .sum::<usize>();
    }
    eprintln!("random runs: {crashes} crashes, {committed} of {total} transactions committed");
    assert!(crashes >= 40 && committed >= total / 4);
}

/// Logs compacted past 600 bytes (the coordinator keeping 2 ended
/// transactions) over ustack TCP on a lossy, duplicating link, with crashes
/// at random steps (a compaction is a step too): the audit holds, the end-
/// of-transaction notices let every node forget, and the logs stay small.
#[test]
fn compaction_under_crashes_over_ustack() {
    let link = LinkConfig::with_latency_of(Duration::from_millis(2))
        .with_loss(0.01)
        .with_dup(0.1);
    let accounts = [["alice", "carol"], ["bob", "dave"]];
    let (mut compactions, mut forgotten, mut crashes) = (0, 0, 0);
    let master = seed_from_env(3000);
    for i in 0..12u64 {
        let seed = master.wrapping_add(i);
        let mut c = Cluster::with_compaction(seed, banks(), link.clone(), Some(600));
        c.strict_blocking = false;
        let mut rng = SmallRng::seed_from_u64(c.sim.derive_seed(WORKLOAD_STREAM));
        let mut next = |n: u64| rng.random_range(0..n);
        for i in 0..24u64 {
            let from = 1 + (next(2) as NodeId);
            let to = 3 - from;
            let fa = accounts[from as usize - 1][next(2) as usize];
            let ta = accounts[to as usize - 1][next(2) as usize];
            c.begin_at(
                START_MS + i * 250 + next(200),
                BankOp::transfer(from, fa, to, ta, 1 + next(15) as i64),
            );
        }
        for id in 0..3 {
            if next(10) < 5 {
                c.node(id).crash_at_step(CrashPlan {
                    at_step: 20 + next(150),
                    mode: CrashMode::Process,
                    downtime: Duration::from_millis(100 + next(3_000)),
                });
            }
        }
        let context = format!("seed {seed}");
        assert!(c.run_until_settled(LIMIT), "{context}\n{}", c.dump());
        c.check_final(&context);
        let begun = c.begun();
        for id in c.ids() {
            let n = c.node(id);
            let size = rpc::twopc::Wal::size(&n.history.wal);
            assert!(size < 1_500, "{context}: node {id} log holds {size} bytes");
            compactions += n.history.compactions;
            crashes += n.history.crashes.len();
            if let Some(p) = n.participant() {
                forgotten += begun.keys().filter(|tx| p.forgot(**tx)).count();
            }
        }
    }
    eprintln!(
        "compaction runs: {compactions} compactions, {forgotten} forgotten, {crashes} crashes"
    );
    assert!(compactions >= 50 && forgotten >= 200 && crashes >= 5);
}
