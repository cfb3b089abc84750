//! Two-phase commit under crashes, blocking, duplicates and delays, in a
//! deterministic in-memory network with a virtual clock.

mod seeded;
mod twopc_harness;

use rpc::twopc::{
    Bank, BankOp, CoordState, Coordinator, CoordinatorConfig, Effect, LogRecord, Msg, PartState,
    Participant, ParticipantConfig,
};
use std::time::{Duration, Instant};
use twopc_harness::{NONCE, Rng, Sim, tx};

fn banks() -> Vec<Bank> {
    vec![
        Bank::new([("alice", 100), ("carol", 10)]),
        Bank::new([("bob", 50), ("dave", 0)]),
    ]
}

const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn commit_and_abort_without_failures() {
    let mut sim = Sim::new(1, banks());
    let t1 = sim
        .begin(BankOp::transfer(1, "alice", 2, "bob", 30))
        .expect("begin");
    let t2 = sim
        .begin(BankOp::transfer(1, "carol", 2, "dave", 11))
        .expect("begin"); // insufficient funds
    assert!(sim.run_to_quiescence(LIMIT));
    sim.check_final(&banks());
    assert_eq!(
        sim.coord_state(t1),
        Some(CoordState::Ended { committed: true })
    );
    assert_eq!(
        sim.coord_state(t2),
        Some(CoordState::Ended { committed: false })
    );
    assert_eq!(sim.bank(1).balance("alice"), Some(70));
    assert_eq!(sim.bank(2).balance("bob"), Some(80));
    assert_eq!(sim.bank(1).balance("carol"), Some(10));
}

/// An idempotency key makes a retried begin return the first transaction:
/// in the same run (nothing new is logged or sent), and after a restart
/// whose log holds the keyed BEGIN, even though recovery aborted it -- the
/// retry learns ABORT instead of starting a second transfer. A key whose
/// BEGIN never reached the log begins a new transaction (the first never
/// left the coordinator).
#[test]
fn a_keyed_begin_is_done_once_across_retries_and_restarts() {
    let now = Instant::now();
    let cfg = CoordinatorConfig::default();
    let mut c = Coordinator::new(0, cfg.clone());
    let t1 = c
        .begin_keyed(
            now,
            Some(42),
            NONCE,
            BankOp::transfer(1, "alice", 2, "bob", 5),
        )
        .expect("begin");
    let logged: Vec<LogRecord> = c
        .drain_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Log(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(
        c.begin_keyed(
            now,
            Some(42),
            NONCE,
            BankOp::transfer(1, "alice", 2, "bob", 5)
        ),
        Some(t1)
    );
    assert!(
        c.drain_effects().is_empty(),
        "a retry logs and sends nothing"
    );
    let t2 = c
        .begin_keyed(
            now,
            Some(43),
            NONCE,
            BankOp::transfer(1, "alice", 2, "bob", 5),
        )
        .expect("another key, another transaction");
    assert_ne!(t1, t2);
    let unkeyed = c
        .begin(now, NONCE, BankOp::transfer(1, "alice", 2, "bob", 5))
        .unwrap();
    assert_ne!(
        unkeyed,
        c.begin(now, NONCE, BankOp::transfer(1, "alice", 2, "bob", 5))
            .unwrap()
    );

    // Crash with only t1's BEGIN durable: recovery aborts it, and a retry
    // with its key is told about t1, not given a new transaction.
    let mut r = Coordinator::recover(0, cfg, &logged, now);
    assert_eq!(r.state(t1), Some(CoordState::Abort));
    assert_eq!(
        r.begin_keyed(
            now,
            Some(42),
            NONCE,
            BankOp::transfer(1, "alice", 2, "bob", 5)
        ),
        Some(t1)
    );
    // Key 43's BEGIN was lost in the crash: its retry begins afresh.
    let t3 = r
        .begin_keyed(
            now,
            Some(43),
            NONCE,
            BankOp::transfer(1, "alice", 2, "bob", 5),
        )
        .unwrap();
    assert_ne!(t3, t1);
    assert_eq!(r.state(t3), Some(CoordState::Wait));
}

#[test]
fn effects_put_the_log_before_the_message() {
    let now = Instant::now();
    let mut c = Coordinator::new(0, CoordinatorConfig::default());
    let tx = c
        .begin(now, NONCE, BankOp::transfer(1, "alice", 2, "bob", 1))
        .expect("begin");
    let e = c.drain_effects();
    assert!(
        matches!(&e[0], Effect::Log(LogRecord::Begin { .. })),
        "{e:?}"
    );
    assert!(e[1..].iter().all(|e| matches!(
        e,
        Effect::Send {
            msg: Msg::Prepare { .. },
            ..
        }
    )));
    assert_eq!(e.len(), 3);

    let mut p = Participant::new(1, banks().remove(0), ParticipantConfig::default());
    p.handle_message(
        now,
        0,
        Msg::Prepare {
            tx,
            participants: vec![1, 2],
            work: BankOp::work(&[("alice", -1)]),
        },
    );
    let e = p.drain_effects();
    assert!(
        matches!(
            &e[..],
            [
                Effect::Log(LogRecord::Ready { .. }),
                Effect::Send {
                    msg: Msg::Vote { commit: true, .. },
                    ..
                }
            ]
        ),
        "{e:?}"
    );

    c.handle_message(now, 1, Msg::Vote { tx, commit: true });
    assert!(c.drain_effects().is_empty());
    c.handle_message(now, 2, Msg::Vote { tx, commit: true });
    let e = c.drain_effects();
    assert!(
        matches!(&e[0], Effect::Log(LogRecord::Global { commit: true, .. })),
        "{e:?}"
    );
    assert!(matches!(&e[1], Effect::Outcome { commit: true, .. }));
    assert!(e[2..].iter().all(|e| matches!(
        e,
        Effect::Send {
            msg: Msg::Decision { commit: true, .. },
            ..
        }
    )));

    p.handle_message(now, 0, Msg::Decision { tx, commit: true });
    let e = p.drain_effects();
    assert!(
        matches!(
            &e[..],
            [
                Effect::Log(LogRecord::Local { commit: true, .. }),
                Effect::Outcome { .. },
                Effect::Send {
                    msg: Msg::Ack { .. },
                    ..
                }
            ]
        ),
        "{e:?}"
    );
    assert_eq!(p.resource().balance("alice"), Some(99));
    // Duplicate decision: acknowledged again, nothing re-applied or re-logged.
    p.handle_message(now, 0, Msg::Decision { tx, commit: true });
    assert!(matches!(
        &p.drain_effects()[..],
        [Effect::Send {
            msg: Msg::Ack { .. },
            ..
        }]
    ));
    assert_eq!(p.resource().balance("alice"), Some(99));

    c.handle_message(now, 1, Msg::Ack { tx });
    c.handle_message(now, 1, Msg::Ack { tx });
    assert!(c.drain_effects().is_empty());
    c.handle_message(now, 2, Msg::Ack { tx });
    // END, then the end-of-transaction notice to each participant: every
    // transaction below 2 (the next number) has ended.
    assert!(matches!(
        &c.drain_effects()[..],
        [
            Effect::Log(LogRecord::End { .. }),
            Effect::Completed { .. },
            Effect::Send {
                to: 1,
                msg: Msg::Finished { below: 2, .. }
            },
            Effect::Send {
                to: 2,
                msg: Msg::Finished { below: 2, .. }
            },
        ]
    ));
}

/// Steps each node takes in a failure-free run of `scenario`.
fn clean_steps(scenario: &dyn Fn(&mut Sim)) -> Vec<u64> {
    let mut sim = Sim::new(7, banks());
    scenario(&mut sim);
    assert!(sim.run_to_quiescence(LIMIT));
    sim.check_final(&banks());
    sim.nodes.values().map(|n| n.steps).collect()
}

type Scenario = Box<dyn Fn(&mut Sim)>;

fn scenarios() -> Vec<(&'static str, Scenario)> {
    vec![
        (
            "commit",
            Box::new(|s: &mut Sim| {
                s.begin(BankOp::transfer(1, "alice", 2, "bob", 30));
            }),
        ),
        (
            "vote abort",
            Box::new(|s: &mut Sim| {
                s.begin(BankOp::transfer(1, "alice", 2, "bob", 101));
            }),
        ),
        (
            "two transactions",
            Box::new(|s: &mut Sim| {
                s.begin(BankOp::transfer(1, "alice", 2, "bob", 30));
                s.begin(BankOp::transfer(2, "bob", 1, "carol", 5));
            }),
        ),
    ]
}

#[test]
fn crash_at_every_step_of_every_node() {
    let downtimes = [Duration::from_millis(300), Duration::from_secs(6)];
    let mut cases = 0;
    for (name, scenario) in scenarios() {
        let steps = clean_steps(&*scenario);
        for victim in 0..3u32 {
            for k in 1..=steps[victim as usize] + 1 {
                for &down in &downtimes {
                    let mut sim = Sim::new(7, banks());
                    sim.crash_at(victim, k, down);
                    scenario(&mut sim);
                    assert!(
                        sim.run_to_quiescence(LIMIT),
                        "{name}: node {victim} step {k}: no quiescence\n{}",
                        sim.dump()
                    );
                    sim.check_final(&banks());
                    cases += 1;
                }
            }
        }
    }
    eprintln!("crash points checked: {cases}");
    assert!(cases > 100);
}

#[test]
fn two_nodes_crash_at_every_pair_of_steps() {
    let (_, scenario) = scenarios().remove(0);
    let steps = clean_steps(&*scenario);
    let mut cases = 0;
    for (a, b) in [(0u32, 1u32), (0, 2), (1, 2)] {
        for ka in 1..=steps[a as usize] {
            for kb in 1..=steps[b as usize] {
                let mut sim = Sim::new(11, banks());
                sim.crash_at(a, ka, Duration::from_millis(700));
                sim.crash_at(b, kb, Duration::from_secs(3));
                scenario(&mut sim);
                assert!(
                    sim.run_to_quiescence(LIMIT),
                    "crash {a}@{ka} {b}@{kb}\n{}",
                    sim.dump()
                );
                sim.check_final(&banks());
                cases += 1;
            }
        }
    }
    eprintln!("crash pairs checked: {cases}");
}

/// The step at which node `id` does `what` (first match) in a clean run.
fn step_of(scenario: &dyn Fn(&mut Sim), id: u32, what: &str) -> u64 {
    let mut sim = Sim::new(7, banks());
    scenario(&mut sim);
    sim.run_to_quiescence(LIMIT);
    sim.trace
        .iter()
        .find(|(_, n, _, w)| *n == id && w.starts_with(what))
        .map(|(_, _, s, _)| *s)
        .unwrap_or_else(|| panic!("no step {what:?} at node {id}"))
}

#[test]
fn all_ready_and_coordinator_down_blocks_until_it_returns() {
    let (_, scenario) = scenarios().remove(0);
    // Crash the coordinator just before it logs its decision: both
    // participants are READY and nobody knows the outcome.
    let k = step_of(&*scenario, 0, "append Global");
    let mut sim = Sim::new(7, banks());
    sim.crash_at(0, k, Duration::from_secs(20));
    scenario(&mut sim);
    sim.run_until(sim.at(15_000));
    let tx = tx(1);
    for p in [1, 2] {
        assert_eq!(
            sim.part_state(p, tx),
            Some(PartState::Blocked),
            "participant {p}"
        );
        assert!(
            sim.node(p).blocked.contains_key(&tx),
            "participant {p} did not report Blocked"
        );
        assert!(
            sim.bank(p).locked() > 0,
            "a blocked participant keeps its locks"
        );
    }
    assert!(!sim.node(0).is_up());
    assert!(sim.run_to_quiescence(LIMIT));
    sim.check_final(&banks());
    // Recovered in WAIT: the coordinator aborts.
    assert_eq!(
        sim.coord_state(tx),
        Some(CoordState::Ended { committed: false })
    );
    // Participant 1 aborted, and forgot it after the end-of-transaction notice.
    assert_eq!(sim.node(1).outcomes.get(&tx), Some(&false));
    assert!(sim.node(1).participant().expect("up").forgot(tx));
}

#[test]
fn blocked_participants_commit_when_the_coordinator_had_logged_commit() {
    let (_, scenario) = scenarios().remove(0);
    // Crash right after the COMMIT record is synced, before any decision is sent.
    let k = step_of(&*scenario, 0, "send 1 Decision");
    let mut sim = Sim::new(7, banks());
    sim.crash_at(0, k, Duration::from_secs(20));
    scenario(&mut sim);
    sim.run_until(sim.at(15_000));
    let tx = tx(1);
    assert_eq!(sim.part_state(1, tx), Some(PartState::Blocked));
    assert!(sim.run_to_quiescence(LIMIT));
    sim.check_final(&banks());
    assert_eq!(
        sim.coord_state(tx),
        Some(CoordState::Ended { committed: true })
    );
    assert_eq!(sim.bank(2).balance("bob"), Some(80));
}

#[test]
fn a_participant_still_in_init_lets_a_ready_one_abort() {
    let (_, scenario) = scenarios().remove(0);
    let tx = tx(1);
    // Participant 2 never gets its VOTE-REQUEST; the coordinator dies after
    // sending them (its next step is the abort at the vote timeout).
    let k = step_of(&*scenario, 0, "append Global");
    let mut sim = Sim::new(7, banks());
    sim.filter = Some(Box::new(|_, to, m| {
        to == 2 && matches!(m, Msg::Prepare { .. })
    }));
    sim.crash_at(0, k, Duration::from_secs(30));
    scenario(&mut sim);
    sim.run_until(sim.at(20_000));
    assert!(!sim.node(0).is_up());
    assert_eq!(
        sim.part_state(2, tx),
        Some(PartState::Aborted),
        "INIT answers by aborting"
    );
    assert_eq!(
        sim.part_state(1, tx),
        Some(PartState::Aborted),
        "READY learns abort from a peer"
    );
    assert_eq!(sim.bank(1).locked(), 0);
    assert!(sim.node(1).blocked.is_empty(), "never blocked");
    sim.filter = None;
    assert!(sim.run_to_quiescence(LIMIT));
    sim.check_final(&banks());
}

#[test]
fn a_peer_that_knows_commit_decides_for_a_ready_participant() {
    let (_, scenario) = scenarios().remove(0);
    let tx = tx(1);
    // Decisions to participant 2 are lost and the coordinator dies at its
    // first re-send.
    let mut sim = Sim::new(7, banks());
    sim.filter = Some(Box::new(|_, to, m| {
        to == 2 && matches!(m, Msg::Decision { .. })
    }));
    scenario(&mut sim);
    sim.run_until(sim.at(300));
    assert_eq!(sim.part_state(1, tx), Some(PartState::Committed));
    assert_eq!(sim.part_state(2, tx), Some(PartState::Ready));
    sim.crash_now(0, Duration::from_secs(30));
    sim.run_until(sim.at(20_000));
    assert_eq!(
        sim.part_state(2, tx),
        Some(PartState::Committed),
        "learned COMMIT from participant 1"
    );
    assert_eq!(sim.bank(2).balance("bob"), Some(80));
    sim.filter = None;
    assert!(sim.run_to_quiescence(LIMIT));
    sim.check_final(&banks());
}

#[test]
fn prepare_timeout_in_init_means_vote_abort() {
    // Long vote timeout and no peer queries, so that only participant 2's
    // PREPARE timeout can end the transaction.
    let ccfg = CoordinatorConfig {
        vote_timeout: Duration::from_secs(30),
        ..CoordinatorConfig::default()
    };
    let pcfg = ParticipantConfig {
        peer_query_after: Duration::from_secs(60),
        ..ParticipantConfig::default()
    };
    let mut sim = Sim::with_configs(3, banks(), ccfg, pcfg);
    let tx = tx(1);
    sim.expect(2, tx);
    sim.filter = Some(Box::new(|_, to, m| {
        to == 2 && matches!(m, Msg::Prepare { .. })
    }));
    sim.begin(BankOp::transfer(1, "alice", 2, "bob", 30));
    sim.run_until(sim.at(4_900));
    assert_eq!(sim.part_state(2, tx), Some(PartState::Init));
    sim.run_until(sim.at(5_500));
    assert_eq!(
        sim.part_state(2, tx),
        Some(PartState::Aborted),
        "INIT timed out"
    );
    // The re-sent VOTE-REQUEST now gets through and is answered VOTE-ABORT.
    sim.filter = None;
    sim.run_until(sim.at(7_000));
    assert_eq!(
        sim.coord_state(tx),
        Some(CoordState::Ended { committed: false })
    );
    assert!(sim.run_to_quiescence(LIMIT));
    sim.check_final(&banks());
    assert_eq!(
        sim.coord_state(tx),
        Some(CoordState::Ended { committed: false })
    );
}

#[test]
fn duplicated_delayed_and_replayed_messages_are_harmless() {
    for seed in 0..20 {
        let mut sim = Sim::new(seed, banks());
        sim.dup = 0.3;
        sim.loss = 0.05;
        sim.max_delay = Duration::from_millis(400);
        for i in 0..6 {
            sim.run_until(sim.at(i * 150));
            let amount = 1 + sim.rng.below(60) as i64;
            if i % 2 == 0 {
                sim.begin(BankOp::transfer(1, "alice", 2, "bob", amount));
            } else {
                sim.begin(BankOp::transfer(2, "bob", 1, "carol", amount));
            }
        }
        assert!(sim.run_to_quiescence(LIMIT), "seed {seed}");
        sim.check_final(&banks());
        let before: Vec<_> = [1, 2]
            .iter()
            .map(|&p| sim.bank(p).balances().clone())
            .collect();
        // Every message ever sent arrives again, twice, in random order.
        let sent = sim.sent.clone();
        for (from, to, msg) in sent {
            sim.inject(from, to, msg.clone());
            sim.inject(from, to, msg);
        }
        assert!(sim.run_to_quiescence(LIMIT * 2), "seed {seed}");
        sim.check_final(&banks());
        let after: Vec<_> = [1, 2]
            .iter()
            .map(|&p| sim.bank(p).balances().clone())
            .collect();
        assert_eq!(
            before, after,
            "seed {seed}: replayed messages changed balances"
        );
    }
}

#[test]
fn random_crashes_losses_and_duplicates() {
    let initial = || {
        vec![
            Bank::new([("a1", 100), ("a2", 20)]),
            Bank::new([("b1", 50), ("b2", 0)]),
            Bank::new([("c1", 80), ("c2", 5)]),
        ]
    };
    let accounts = [["a1", "a2"], ["b1", "b2"], ["c1", "c2"]];
    let (mut crashes, mut committed, mut total) = (0, 0, 0);
    for seed in 0..150 {
        let mut sim = Sim::new(seed, initial());
        let mut rng = Rng::new(seed ^ 0xDEAD_BEEF);
        sim.dup = 0.1;
        sim.loss = 0.05;
        sim.max_delay = Duration::from_millis(50);
        for id in 0..4u32 {
            if rng.chance(0.6) {
                let step = 1 + rng.below(25);
                let down = Duration::from_millis(100 + rng.below(6_000));
                sim.crash_at(id, step, down);
            }
        }
        for i in 0..8u64 {
            sim.run_until(sim.at(i * 300 + rng.below(300)));
            let from = 1 + rng.below(3) as u32;
            let to = 1 + (from as u64 + rng.below(2)) as u32 % 3;
            let to = if to == 0 { 3 } else { to };
            let amount = 1 + rng.below(70) as i64;
            let fa = accounts[from as usize - 1][rng.below(2) as usize];
            let ta = accounts[to as usize - 1][rng.below(2) as usize];
            sim.begin(BankOp::transfer(from, fa, to, ta, amount));
        }
        // A second wave of crashes after the first recoveries.
        for id in 0..4u32 {
            if rng.chance(0.3) {
                let n = sim.node(id).steps + 1 + rng.below(10);
                sim.crash_at(id, n, Duration::from_millis(100 + rng.below(3_000)));
            }
        }
        assert!(
            sim.run_to_quiescence(LIMIT),
            "seed {seed}: no quiescence\n{}",
            sim.dump()
        );
        sim.check_final(&initial());
        crashes += sim.nodes.values().map(|n| n.crashes).sum::<u32>();
        committed += sim
            .work
            .keys()
            .filter(|tx| sim.coord_state(**tx).and_then(CoordState::decision) == Some(true))
            .count();
        total += sim.work.len();
    }
    eprintln!("random runs: {crashes} crashes, {committed} of {total} transactions committed");
    assert!(crashes > 100 && committed > total / 5);
}

#[test]
fn checkpoints_keep_balances_and_decisions_across_restarts() {
    let mut sim = Sim::new(5, banks());
    let t1 = sim
        .begin(BankOp::transfer(1, "alice", 2, "bob", 30))
        .expect("begin");
    assert!(sim.run_to_quiescence(Duration::from_secs(10)));
    sim.checkpoint(1);
    sim.checkpoint(2);
    let t2 = sim
        .begin(BankOp::transfer(1, "alice", 2, "bob", 5))
        .expect("begin");
    sim.run_until(sim.at(10_100));
    sim.crash_now(1, Duration::from_millis(500));
    sim.crash_now(2, Duration::from_millis(800));
    assert!(sim.run_to_quiescence(LIMIT));
    sim.check_final(&banks());
    assert_eq!(
        sim.node(1).outcomes.get(&t1),
        Some(&true),
        "decision survives the checkpoint"
    );
    let p1 = sim.node(1).participant().expect("up");
    assert!(p1.forgot(t1) && p1.forgot(t2), "both ended: forgotten");
    assert_eq!(
        sim.coord_state(t2).and_then(CoordState::decision),
        Some(true)
    );
    assert_eq!(sim.bank(1).balance("alice"), Some(65));
}

/// Logs compacted often (a checkpoint replaces the log whenever it passes
/// 700 bytes), the coordinator keeping only 2 ended transactions, under
/// crashes (including just before a compaction), losses and duplicates:
/// balances and outcomes stay right, every log stays small, and the
/// tables shrink to what is still in flight.
#[test]
fn compaction_keeps_balances_and_outcomes_under_crashes() {
    let initial = || {
        vec![
            Bank::new([("a1", 100), ("a2", 20)]),
            Bank::new([("b1", 50), ("b2", 0)]),
        ]
    };
    let accounts = [["a1", "a2"], ["b1", "b2"]];
    let (mut compactions, mut crashes, mut forgotten) = (0, 0, 0);
    for seed in 0..40 {
        let ccfg = CoordinatorConfig {
            keep_finished: 2,
            ..CoordinatorConfig::default()
        };
        let mut sim = Sim::with_configs(seed, initial(), ccfg, ParticipantConfig::default());
        sim.compact_bytes = Some(700);
        let mut rng = Rng::new(seed ^ 0x00C0_FFEE);
        sim.dup = 0.1;
        sim.loss = 0.05;
        sim.max_delay = Duration::from_millis(50);
        for id in 0..3u32 {
            if rng.chance(0.5) {
                let step = 20 + rng.below(200);
                sim.crash_at(id, step, Duration::from_millis(100 + rng.below(3_000)));
            }
        }
        for i in 0..40u64 {
            sim.run_until(sim.at(i * 200 + rng.below(200)));
            let from = 1 + rng.below(2) as u32;
            let to = 3 - from;
            let amount = 1 + rng.below(30) as i64;
            let fa = accounts[from as usize - 1][rng.below(2) as usize];
            let ta = accounts[to as usize - 1][rng.below(2) as usize];
            sim.begin(BankOp::transfer(from, fa, to, ta, amount));
        }
        assert!(
            sim.run_to_quiescence(LIMIT),
            "seed {seed}: no quiescence\n{}",
            sim.dump()
        );
        sim.check_final(&initial());
        for n in sim.nodes.values() {
            assert!(
                rpc::twopc::Wal::size(&n.wal) < 1_500,
                "seed {seed}: node {} log holds {} bytes",
                n.id,
                rpc::twopc::Wal::size(&n.wal)
            );
        }
        let c = sim.node(0).coordinator().expect("up");
        assert!(
            c.transactions().count() <= 3,
            "seed {seed}: the coordinator remembers {} transactions",
            c.transactions().count()
        );
        for p in [1, 2] {
            let part = sim.node(p).participant().expect("up");
            forgotten += sim.work.keys().filter(|tx| part.forgot(**tx)).count();
        }
        compactions += sim.compactions;
        crashes += sim.nodes.values().map(|n| n.crashes).sum::<u32>();
    }
    eprintln!(
        "compaction runs: {compactions} compactions, {crashes} crashes, {forgotten} forgotten"
    );
    assert!(compactions > 200 && crashes > 20 && forgotten > 1000);
}

/// After a transaction is forgotten, every message about it that arrives
/// again (old PREPAREs, decisions, votes, queries) is ignored: nothing is
/// prepared twice, nothing is logged, no lock is taken, and the coordinator
/// does not answer "never heard of it, ABORT" for a committed transaction.
#[test]
fn stale_messages_about_forgotten_transactions_are_ignored() {
    let mut sim = Sim::new(3, banks());
    let t1 = sim
        .begin(BankOp::transfer(1, "alice", 2, "bob", 30))
        .expect("begin");
    sim.run_until(sim.at(1_000));
    let t2 = sim
        .begin(BankOp::transfer(1, "alice", 2, "bob", 5))
        .expect("begin");
    assert!(sim.run_to_quiescence(LIMIT));
    for p in [1, 2] {
        let part = sim.node(p).participant().expect("up");
        assert!(part.forgot(t1) && part.forgot(t2), "participant {p}");
        assert_eq!(part.watermark(0), 3);
    }
    let logs: Vec<usize> = [0, 1, 2]
        .iter()
        .map(|&id| sim.node(id).wal.durable_len())
        .collect();
    let sent = sim.sent.clone();
    for (from, to, msg) in sent {
        if !matches!(msg, Msg::Finished { .. }) {
            sim.inject(from, to, msg);
        }
    }
    assert!(sim.run_to_quiescence(LIMIT * 2), "{}", sim.dump());
    sim.check_final(&banks());
    assert_eq!(sim.bank(1).balance("alice"), Some(65));
    assert_eq!(sim.bank(2).locked(), 0);
    for (i, &id) in [1, 2].iter().enumerate() {
        assert_eq!(
            sim.node(id).wal.durable_len(),
            logs[i + 1],
            "participant {id} logged something for a stale message"
        );
    }
    // The coordinator still remembers them (keep_finished) and re-acks nothing.
    assert_eq!(
        sim.coord_state(t1),
        Some(CoordState::Ended { committed: true })
    );
}
