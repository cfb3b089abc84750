use super::*;

const TX: TxId = TxId {
    coordinator: 1,
    seq: 7,
    nonce: 0x5eed,
};

#[test]
fn backed_by_is_the_write_ahead_rule() {
    let begin = LogRecord::Begin {
        tx: TX,
        participants: vec![2, 3],
        key: None,
    };
    let ready = LogRecord::Ready {
        tx: TX,
        participants: vec![2, 3],
        work: vec![],
    };
    let commit = |commit| LogRecord::Global { tx: TX, commit };
    let local = |commit| LogRecord::Local { tx: TX, commit };
    let decision = |commit| Msg::Decision { tx: TX, commit };
    let vote = |commit| Msg::Vote { tx: TX, commit };
    let peer = |state| Msg::PeerState { tx: TX, state };

    // Coordinator side.
    assert!(!decision(true).backed_by(std::slice::from_ref(&begin)));
    assert!(decision(true).backed_by(&[begin.clone(), commit(true)]));
    assert!(!decision(false).backed_by(&[begin.clone(), commit(true)]));
    assert!(
        decision(false).backed_by(&[]),
        "ABORT for an unknown transaction"
    );
    // Participant side.
    assert!(!vote(true).backed_by(&[]));
    assert!(vote(true).backed_by(std::slice::from_ref(&ready)));
    assert!(!vote(false).backed_by(std::slice::from_ref(&ready)));
    assert!(vote(false).backed_by(&[local(false)]));
    assert!(!peer(PeerState::Committed).backed_by(&[ready.clone(), local(false)]));
    assert!(peer(PeerState::Committed).backed_by(&[ready.clone(), local(true)]));
    assert!(peer(PeerState::Aborted).backed_by(&[local(false)]));
    assert!(!Msg::Ack { tx: TX }.backed_by(std::slice::from_ref(&ready)));
    assert!(Msg::Ack { tx: TX }.backed_by(&[ready.clone(), local(true)]));
    let snapshot = LogRecord::Snapshot {
        state: vec![],
        txs: vec![TxSnapshot {
            tx: TX,
            decided: Some(true),
            participants: vec![2, 3],
            work: vec![],
        }],
        watermarks: vec![],
    };
    assert!(peer(PeerState::Committed).backed_by(std::slice::from_ref(&snapshot)));
    assert!(!peer(PeerState::Aborted).backed_by(std::slice::from_ref(&snapshot)));
    assert!(Msg::StateQuery { tx: TX }.backed_by(&[]));
}

mod sender_rules {
    use super::super::*;
    use std::time::Instant;

    fn tx(coordinator: NodeId, seq: u64) -> TxId {
        TxId {
            coordinator,
            seq,
            nonce: 0xabcdef,
        }
    }

    fn prepare(t: TxId) -> Msg {
        Msg::Prepare {
            tx: t,
            participants: vec![1, 2],
            work: BankOp::work(&[("alice", -10)]),
        }
    }

    fn bank() -> Participant<Bank> {
        Participant::new(1, Bank::new([("alice", 100)]), ParticipantConfig::default())
    }

    #[test]
    fn a_participant_takes_prepare_and_decision_only_from_the_coordinator() {
        let now = Instant::now();
        let mut p = bank();
        let t = tx(0, 1);
        // A forged PREPARE from participant 2 (or anyone else): refused,
        // nothing locked, nothing logged or sent.
        p.handle_message(now, 2, prepare(t));
        p.handle_message(now, 9, prepare(t));
        assert_eq!(p.refused(), 2);
        assert_eq!(p.status(t), None);
        assert_eq!(p.resource().locked(), 0);
        assert!(p.drain_effects().is_empty());
        // From the coordinator: READY.
        p.handle_message(now, 0, prepare(t));
        assert_eq!(p.status(t), Some(PartState::Ready));
        p.drain_effects();
        // A forged COMMIT does not move money; the coordinator's ABORT does.
        p.handle_message(
            now,
            2,
            Msg::Decision {
                tx: t,
                commit: true,
            },
        );
        assert_eq!(p.refused(), 3);
        assert_eq!(p.status(t), Some(PartState::Ready));
        p.handle_message(
            now,
            0,
            Msg::Decision {
                tx: t,
                commit: false,
            },
        );
        assert_eq!(p.status(t), Some(PartState::Aborted));
        assert_eq!(p.resource().balance("alice"), Some(100));
        // A forged end-of-transaction notice forgets nothing.
        p.handle_message(now, 2, Msg::Finished { tx: t, below: 99 });
        assert_eq!(p.refused(), 4);
        assert_eq!(p.watermark(0), 0);
        assert_eq!(p.status(t), Some(PartState::Aborted));
        // The coordinator's does.
        p.handle_message(now, 0, Msg::Finished { tx: t, below: 2 });
        assert!(p.forgot(t));
        assert!(matches!(
            &p.drain_effects()[..],
            [
                ..,
                Effect::Log(LogRecord::Forget {
                    coordinator: 0,
                    below: 2
                })
            ]
        ));
        // A stale PREPARE for it now is ignored (not prepared again), and
        // not counted as a forgery.
        p.handle_message(now, 0, prepare(t));
        assert_eq!(p.status(t), None);
        assert!(p.drain_effects().is_empty());
        assert_eq!(p.refused(), 4);
    }

    #[test]
    fn termination_queries_only_from_fellow_participants() {
        let now = Instant::now();
        let mut p = bank();
        let t = tx(0, 1);
        p.handle_message(now, 0, prepare(t));
        p.drain_effects();
        // Node 7 is not a participant of t: its query and its "answer" are
        // refused; participant 2's are taken.
        p.handle_message(now, 7, Msg::StateQuery { tx: t });
        p.handle_message(
            now,
            7,
            Msg::PeerState {
                tx: t,
                state: PeerState::Aborted,
            },
        );
        assert_eq!(p.refused(), 2);
        assert!(p.drain_effects().is_empty());
        assert_eq!(p.status(t), Some(PartState::Ready));
        p.handle_message(now, 2, Msg::StateQuery { tx: t });
        assert!(matches!(
            &p.drain_effects()[..],
            [Effect::Send {
                to: 2,
                msg: Msg::PeerState {
                    state: PeerState::Ready,
                    ..
                }
            }]
        ));
        p.handle_message(
            now,
            2,
            Msg::PeerState {
                tx: t,
                state: PeerState::Aborted,
            },
        );
        assert_eq!(p.status(t), Some(PartState::Aborted));
        // Messages of the coordinator role are not for a participant.
        p.handle_message(now, 0, Msg::Ack { tx: t });
        assert_eq!(p.refused(), 3);
    }

    #[test]
    fn a_coordinator_takes_votes_and_acks_only_from_participants() {
        let now = Instant::now();
        let mut c = Coordinator::new(0, CoordinatorConfig::default());
        let t = c
            .begin(now, 5, BankOp::transfer(1, "alice", 2, "bob", 1))
            .expect("begin");
        assert_eq!(t.nonce, 5);
        c.drain_effects();
        // Votes from a non-participant, and from a participant about
        // another coordinator's transaction: refused.
        c.handle_message(
            now,
            7,
            Msg::Vote {
                tx: t,
                commit: true,
            },
        );
        c.handle_message(
            now,
            7,
            Msg::Vote {
                tx: t,
                commit: false,
            },
        );
        c.handle_message(
            now,
            1,
            Msg::Vote {
                tx: tx(3, t.seq),
                commit: false,
            },
        );
        assert_eq!(c.refused(), 3);
        assert_eq!(c.state(t), Some(CoordState::Wait));
        assert!(c.drain_effects().is_empty());
        c.handle_message(
            now,
            1,
            Msg::Vote {
                tx: t,
                commit: true,
            },
        );
        c.handle_message(
            now,
            2,
            Msg::Vote {
                tx: t,
                commit: true,
            },
        );
        assert_eq!(c.state(t), Some(CoordState::Commit));
        c.drain_effects();
        // A forged ACK does not end it.
        c.handle_message(now, 7, Msg::Ack { tx: t });
        c.handle_message(now, 1, Msg::Ack { tx: t });
        assert_eq!(c.state(t), Some(CoordState::Commit));
        assert_eq!(c.refused(), 4);
        // A guessed id (right coordinator and number, wrong nonce) is a
        // transaction never begun: presumed abort, touching nothing real.
        let guess = TxId { nonce: 6, ..t };
        c.handle_message(now, 1, Msg::DecisionRequest { tx: guess });
        assert_eq!(c.state(t), Some(CoordState::Commit));
    }

    #[test]
    fn the_coordinator_forgets_below_its_watermark_minus_what_it_keeps() {
        let now = Instant::now();
        let cfg = CoordinatorConfig {
            keep_finished: 1,
            max_transactions: 3,
            ..CoordinatorConfig::default()
        };
        let mut c = Coordinator::new(0, cfg.clone());
        let mut txs = Vec::new();
        for i in 0..3 {
            let t = c
                .begin(now, i, BankOp::transfer(1, "alice", 2, "bob", 1))
                .expect("begin");
            txs.push(t);
        }
        // Full: a fourth is refused and counted.
        assert_eq!(
            c.begin(now, 9, BankOp::transfer(1, "alice", 2, "bob", 1)),
            None
        );
        assert_eq!(c.refused_begins(), 1);
        for &t in &txs[..2] {
            for p in [1, 2] {
                c.handle_message(
                    now,
                    p,
                    Msg::Vote {
                        tx: t,
                        commit: true,
                    },
                );
            }
            for p in [1, 2] {
                c.handle_message(now, p, Msg::Ack { tx: t });
            }
        }
        // 1 and 2 ended, 3 waits: the watermark is 3; keep one ended.
        assert_eq!(c.watermark(), 3);
        assert_eq!(c.forgotten_below(), 2);
        assert_eq!(c.state(txs[0]), None);
        assert!(c.state(txs[1]).is_some());
        let effects = c.drain_effects();
        assert!(
            effects.iter().any(|e| matches!(
                e,
                Effect::Send {
                    msg: Msg::Finished { below: 3, .. },
                    ..
                }
            )),
            "{effects:?}"
        );
        // Stale messages about the forgotten one get no answer (not a
        // presumed abort of a committed transaction).
        c.handle_message(now, 1, Msg::DecisionRequest { tx: txs[0] });
        assert!(c.drain_effects().is_empty());
        // The checkpoint keeps what is remembered; recovery from it alone
        // gives the same table, numbers and watermark.
        let cp = c.checkpoint_record();
        let r = Coordinator::recover(0, cfg, std::slice::from_ref(&cp), now);
        assert_eq!(r.forgotten_below(), 2);
        assert_eq!(r.state(txs[0]), None);
        assert_eq!(r.state(txs[1]), Some(CoordState::Ended { committed: true }));
        // Recovered in WAIT: aborted, as any WAIT transaction.
        assert_eq!(r.state(txs[2]), Some(CoordState::Abort));
        let mut r = r;
        let next = r
            .begin(now, 1, BankOp::transfer(1, "alice", 2, "bob", 1))
            .expect("room again after recovery");
        assert_eq!(next.seq, 4, "numbers never go back below the watermark");
    }

    #[test]
    fn tx_ids_print_and_parse() {
        let t = TxId {
            coordinator: 3,
            seq: 17,
            nonce: 0x00ff_0000_0000_0000_0000_0000_0000_0001,
        };
        assert_eq!(t.to_string(), "tx 3.17.00ff0000000000000000000000000001");
        assert_eq!(t.short(), "3.17.00ff00");
        assert_eq!(t.to_string().parse::<TxId>(), Ok(t));
        assert_eq!(
            "3.17.00ff0000000000000000000000000001".parse::<TxId>(),
            Ok(t)
        );
        for bad in [
            "",
            "tx 3.17",
            "3.x.1",
            "3.17.1.2",
            "3.17.zz",
            "3.17.000000000000000000000000000000001",
        ] {
            assert!(bad.parse::<TxId>().is_err(), "{bad:?}");
        }
        let (a, b) = (random_nonce(), random_nonce());
        assert_ne!(a, b);
        assert!(a.count_ones() > 20 && a.count_ones() < 108, "{a:x}");
    }

    #[test]
    fn a_participant_table_and_watermarks_are_bounded() {
        let now = Instant::now();
        let cfg = ParticipantConfig {
            max_transactions: 2,
            max_coordinators: 1,
            ..ParticipantConfig::default()
        };
        let mut p = Participant::new(1, Bank::new([("alice", 100)]), cfg);
        for seq in 1..=3 {
            let t = tx(0, seq);
            p.handle_message(
                now,
                0,
                Msg::Prepare {
                    tx: t,
                    participants: vec![1],
                    work: BankOp::work(&[]),
                },
            );
        }
        assert_eq!(p.transactions().len(), 2);
        assert_eq!(p.refused_full(), 1);
        p.handle_message(now, 2, Msg::StateQuery { tx: tx(0, 9) });
        assert_eq!(p.refused_full(), 2, "a query about an unknown one too");
        assert_eq!(p.status(tx(0, 9)), None);
        // Watermarks of one coordinator only.
        p.handle_message(
            now,
            0,
            Msg::Finished {
                tx: tx(0, 1),
                below: 1,
            },
        );
        p.handle_message(
            now,
            5,
            Msg::Finished {
                tx: tx(5, 1),
                below: 7,
            },
        );
        assert_eq!((p.watermark(0), p.watermark(5)), (1, 0));
        assert_eq!(p.refused(), 1);
    }
}
