use super::*;

fn ctx(now: Instant) -> CallContext {
    CallContext {
        now,
        client_id: 1,
        request_id: 1,
        deadline: None,
        peer: None,
    }
}

#[test]
fn leases_expire_and_fail_over() {
    let t0 = Instant::now();
    let mut r = Registry::default();
    let a = r
        .register(&ctx(t0), "bank".into(), "10.0.0.1:7".into(), 1000)
        .expect("register");
    let b = r
        .register(&ctx(t0), "bank".into(), "10.0.0.2:7".into(), 3000)
        .expect("register");
    assert_ne!(a, b);
    assert_eq!(r.lookup(&ctx(t0), "bank".into()), Ok("10.0.0.1:7".into()));
    assert_eq!(r.lookup_all(&ctx(t0), "bank".into()).len(), 2);
    // Renewing a keeps it first; letting it lapse fails over to b.
    let t1 = t0 + Duration::from_millis(900);
    r.renew(&ctx(t1), a).expect("renew");
    assert_eq!(
        r.lookup(&ctx(t0 + Duration::from_millis(1800)), "bank".into()),
        Ok("10.0.0.1:7".into())
    );
    assert_eq!(
        r.lookup(&ctx(t0 + Duration::from_millis(1900)), "bank".into()),
        Ok("10.0.0.2:7".into())
    );
    assert_eq!(
        r.renew(&ctx(t0 + Duration::from_millis(1900)), a),
        Err(BindError::UnknownLease)
    );
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_millis(3000)));
    r.unregister(&ctx(t1), b).expect("unregister");
    assert_eq!(r.lookup(&ctx(t1), "bank".into()), Err(BindError::NotFound));
    assert!(r.is_empty());
    assert!(matches!(
        r.register(&ctx(t1), "x".into(), "y".into(), 1),
        Err(BindError::BadLease { .. })
    ));
}

#[test]
fn lease_tokens_are_unguessable_and_wrong_ones_are_counted() {
    let t0 = Instant::now();
    let mut r = Registry::with_seed(Duration::from_millis(100), Duration::from_secs(60), [5; 32]);
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            r.register(&ctx(t0), format!("n{i}"), "a".into(), 1000)
                .expect("register"),
        );
    }
    // 128 random-looking bits: no two alike, not a small counter, and
    // neighbours unrelated.
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
    assert!(ids.iter().all(|&id| id > u128::from(u64::MAX)));
    assert!(ids.windows(2).all(|w| w[1].wrapping_sub(w[0]) > 1_000_000));
    // Another seed gives other tokens.
    let mut other =
        Registry::with_seed(Duration::from_millis(100), Duration::from_secs(60), [6; 32]);
    let o = other
        .register(&ctx(t0), "n0".into(), "a".into(), 1000)
        .expect("register");
    assert_ne!(o, ids[0]);
    // Guessed tokens renew and withdraw nothing, and are counted.
    for guess in [0, 1, 2, ids[0] + 1, ids[0] ^ 1] {
        assert_eq!(r.renew(&ctx(t0), guess), Err(BindError::UnknownLease));
        assert_eq!(r.unregister(&ctx(t0), guess), Err(BindError::UnknownLease));
    }
    assert_eq!(r.stats().unknown_lease, 10);
    assert_eq!(r.len(), 50);
    // The holder's token works.
    r.unregister(&ctx(t0), ids[0]).expect("unregister");
    assert_eq!(r.lookup(&ctx(t0), "n0".into()), Err(BindError::NotFound));
}

#[test]
fn the_registry_is_bounded() {
    let t0 = Instant::now();
    let mut r = Registry::default().with_max_leases(2);
    r.register(&ctx(t0), "a".into(), "x".into(), 1000)
        .expect("register");
    r.register(&ctx(t0), "b".into(), "x".into(), 1000)
        .expect("register");
    assert_eq!(
        r.register(&ctx(t0), "c".into(), "x".into(), 1000),
        Err(BindError::Full)
    );
    assert_eq!(r.stats().full, 1);
    assert_eq!(
        Registry::default().register(&ctx(t0), "n".repeat(MAX_NAME_LEN + 1), "x".into(), 1000),
        Err(BindError::TooLong)
    );
}
