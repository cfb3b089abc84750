use super::*;

fn cache(capacity: usize) -> ReplyCache {
    ReplyCache::new(&ServerConfig {
        reply_cache_capacity: capacity,
        reply_ttl: Duration::from_secs(10),
        client_ttl: Duration::from_secs(100),
        incarnation: 77,
        ..ServerConfig::default()
    })
}

fn resp(id: u64) -> Response {
    Response {
        request_id: id,
        result: Ok(vec![id as u8]),
    }
}

#[test]
fn duplicate_in_progress_then_replay() {
    let t0 = Instant::now();
    let mut c = cache(10);
    assert_eq!(c.admit(t0, 1, 1), Admission::Execute);
    assert_eq!(c.admit(t0, 1, 1), Admission::InProgress);
    c.complete(t0, 1, resp(1));
    assert_eq!(c.admit(t0, 1, 1), Admission::Replay(resp(1)));
    // Another client with the same request id is a different call.
    assert_eq!(c.admit(t0, 2, 1), Admission::Execute);
}

#[test]
fn eviction_raises_floor_so_no_reexecution() {
    let t0 = Instant::now();
    let mut c = cache(2);
    for id in 1..=3 {
        assert_eq!(c.admit(t0, 7, id), Admission::Execute);
        c.complete(t0, 7, resp(id));
    }
    assert_eq!(c.len(), 2);
    assert_eq!(c.admit(t0, 7, 1), Admission::Stale);
    assert_eq!(c.admit(t0, 7, 2), Admission::Replay(resp(2)));
    assert_eq!(c.admit(t0, 7, 4), Admission::Execute);
}

#[test]
fn expiry_by_time() {
    let t0 = Instant::now();
    let mut c = cache(100);
    assert_eq!(c.admit(t0, 1, 5), Admission::Execute);
    c.complete(t0, 1, resp(5));
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    c.expire(t0 + Duration::from_secs(10));
    assert!(c.is_empty());
    assert_eq!(
        c.admit(t0 + Duration::from_secs(11), 1, 5),
        Admission::Stale
    );
    // The idle client's floor goes after client_ttl.
    c.expire(t0 + Duration::from_secs(200));
    c.expire(t0 + Duration::from_secs(400));
    assert!(c.clients.is_empty());
}

#[test]
fn another_incarnation_is_refused_before_the_table() {
    let t0 = Instant::now();
    let mut c = cache(10);
    let mut req = Request {
        client_id: 1,
        request_id: 1,
        method: 0,
        args: vec![],
        deadline_ms: None,
        incarnation: 76,
    };
    assert_eq!(c.admit_request(t0, &req), Admission::Restarted);
    // Refused without being recorded: the right incarnation executes it.
    req.incarnation = 77;
    assert_eq!(c.admit_request(t0, &req), Admission::Execute);
    assert_eq!(c.admit_request(t0, &req), Admission::InProgress);
}
