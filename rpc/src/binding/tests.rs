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
