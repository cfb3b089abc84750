use super::*;
use rpc::twopc::{MemWal, TxId};

const TX: TxId = TxId {
    coordinator: 0,
    seq: 1,
    nonce: 0xa11ce,
};

fn recorder() -> (CrashAction, Arc<Mutex<Vec<CrashPoint>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    (Box::new(move |p| s.lock().expect("lock").push(p)), seen)
}

#[test]
fn parses_points_and_counts() {
    let s: CrashSpec = "ready-logged".parse().expect("parse");
    assert_eq!(
        s,
        CrashSpec {
            point: CrashPoint::ReadyLogged,
            nth: 1
        }
    );
    let s: CrashSpec = "before-commit:3".parse().expect("parse");
    assert_eq!((s.point, s.nth), (CrashPoint::BeforeCommit, 3));
    assert_eq!(s.to_string(), "before-commit:3");
    assert!("before-commit:0".parse::<CrashSpec>().is_err());
    assert!("nowhere".parse::<CrashSpec>().is_err());
    let ready: CrashSpec = "ready-logged".parse().expect("parse");
    assert!(ready.check_role(Role::Coordinator).is_err());
    assert!(ready.check_role(Role::Participant).is_ok());
    let end: CrashSpec = "before-end".parse().expect("parse");
    assert!(end.check_role(Role::Participant).is_err());
}

#[test]
fn after_sync_point_fires_once_the_record_is_durable() {
    let (action, seen) = recorder();
    let plan = CrashPlan::new(Some("ready-logged:2".parse().expect("parse")));
    let mut wal = CrashWal::new(MemWal::new(), Arc::clone(&plan), action);
    let ready = LogRecord::Ready {
        tx: TX,
        participants: vec![1, 2],
        work: vec![],
    };
    wal.append(&ready).expect("append");
    wal.sync().expect("sync");
    assert!(seen.lock().expect("lock").is_empty(), "first occurrence");
    wal.append(&ready).expect("append");
    assert!(seen.lock().expect("lock").is_empty(), "not durable yet");
    wal.sync().expect("sync");
    assert_eq!(*seen.lock().expect("lock"), vec![CrashPoint::ReadyLogged]);
    assert_eq!(plan.armed(), None, "disarmed after firing");
    assert_eq!(wal.replay().expect("replay").len(), 2);
}

#[test]
fn before_append_point_fires_before_the_record_is_written() {
    let (action, seen) = recorder();
    let plan = CrashPlan::new(None);
    let mut wal = CrashWal::new(MemWal::new(), Arc::clone(&plan), action);
    // Abort decisions do not count as the commit point.
    wal.append(&LogRecord::Global {
        tx: TX,
        commit: false,
    })
    .expect("append");
    plan.arm("before-commit".parse().expect("parse"));
    wal.append(&LogRecord::Global {
        tx: TX,
        commit: false,
    })
    .expect("append");
    assert!(seen.lock().expect("lock").is_empty());
    wal.append(&LogRecord::Global {
        tx: TX,
        commit: true,
    })
    .expect("append");
    assert_eq!(*seen.lock().expect("lock"), vec![CrashPoint::BeforeCommit]);
}
