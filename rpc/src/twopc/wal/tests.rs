use super::super::{Msg, TxId};
use super::*;

fn rec(seq: u64) -> LogRecord {
    LogRecord::Begin {
        tx: TxId {
            coordinator: 1,
            seq,
            nonce: 0x5eed,
        },
        participants: vec![2, 3],
        key: Some(seq * 7),
    }
}

#[test]
fn crc_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn mem_wal_loses_unsynced_and_torn() {
    let mut w = MemWal::new();
    w.append(&rec(1)).expect("append");
    w.sync().expect("sync");
    w.append(&rec(2)).expect("append");
    w.crash();
    assert_eq!(w.replay().expect("replay"), vec![rec(1)]);
    w.append(&rec(3)).expect("append");
    let n = w.unsynced_len();
    for keep in 0..n {
        let mut torn = w.clone();
        torn.crash_torn(keep);
        assert_eq!(torn.replay().expect("replay"), vec![rec(1)], "keep {keep}");
        // New appends after the torn tail are readable.
        torn.append(&rec(4)).expect("append");
        torn.sync().expect("sync");
        assert_eq!(torn.replay().expect("replay"), vec![rec(1), rec(4)]);
    }
}

#[test]
fn file_wal_round_trip_and_torn_tail() {
    let dir = std::env::temp_dir().join(format!("rpc-wal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("unit.wal");
    let _ = std::fs::remove_file(&path);
    {
        let mut w = FileWal::open(&path).expect("open");
        w.append(&rec(1)).expect("append");
        w.append(&rec(2)).expect("append");
        w.sync().expect("sync");
        w.append(&rec(3)).expect("append"); // never synced: lost with the process
    }
    // Simulate a torn write: half a record at the end.
    let mut torn = Vec::new();
    encode_record(&mut torn, &rec(9)).expect("encode");
    let mut f = OpenOptions::new().append(true).open(&path).expect("open");
    f.write_all(&torn[..torn.len() / 2]).expect("write");
    drop(f);
    let mut w = FileWal::open(&path).expect("reopen");
    assert_eq!(w.replay().expect("replay"), vec![rec(1), rec(2)]);
    w.append(&rec(4)).expect("append");
    w.sync().expect("sync");
    drop(w); // releases the lock
    assert_eq!(
        FileWal::open(&path)
            .expect("reopen")
            .replay()
            .expect("replay"),
        vec![rec(1), rec(2), rec(4)]
    );
    // A flipped bit in the final record fails its CRC: a torn write,
    // replay stops before that record.
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");
    assert_eq!(
        FileWal::open(&path)
            .expect("reopen")
            .replay()
            .expect("replay"),
        vec![rec(1), rec(2)]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn three_records() -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 1..=3 {
        encode_record(&mut bytes, &rec(i)).expect("encode");
    }
    bytes
}

#[test]
fn a_flipped_bit_in_the_middle_is_an_error_not_a_truncation() {
    let bytes = three_records();
    let first = {
        let mut b = Vec::new();
        encode_record(&mut b, &rec(1)).expect("encode");
        b.len()
    };
    // Every bit of the second record, header included: never silently cut.
    for byte in first..2 * first {
        for bit in 0..8 {
            let mut bad = bytes.clone();
            bad[byte] ^= 1 << bit;
            match decode_records(&bad) {
                Err(c) => {
                    assert_eq!(c.offset, first, "byte {byte} bit {bit}");
                    assert_eq!(c.next_valid, 2 * first, "byte {byte} bit {bit}");
                }
                Ok((records, _)) => panic!("byte {byte} bit {bit}: replayed {records:?}"),
            }
        }
    }
    // The same flip in memory: replay fails and changes nothing.
    let mut w = MemWal::new();
    for i in 1..=3 {
        w.append(&rec(i)).expect("append");
    }
    w.sync().expect("sync");
    w.flip_bit(first + 9, 3);
    let before = w.durable_len();
    let e = w.replay().expect_err("corrupt");
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains(&format!("byte {first}")), "{e}");
    assert_eq!(w.durable_len(), before);
}

#[test]
fn only_a_torn_final_record_is_cut() {
    let bytes = three_records();
    let two = {
        let mut b = Vec::new();
        encode_record(&mut b, &rec(1)).expect("encode");
        encode_record(&mut b, &rec(2)).expect("encode");
        b.len()
    };
    for keep in two..bytes.len() {
        let (records, valid) = decode_records(&bytes[..keep]).expect("torn tail");
        assert_eq!(records, vec![rec(1), rec(2)], "keep {keep}");
        assert_eq!(valid, two);
    }
    // A bad bit in the last record, nothing after it: a torn write.
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(decode_records(&bad).expect("torn").0, vec![rec(1), rec(2)]);
}

#[test]
fn file_wal_refuses_corruption_and_a_second_opener() {
    let dir = std::env::temp_dir().join(format!("rpc-wal-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("c.wal");
    let _ = std::fs::remove_file(&path);
    {
        let w = FileWal::open(&path).expect("create");
        assert!(w.was_empty(), "a missing file opens as a new, empty log");
        // flock: a second opener (here, in the same process) is refused.
        let e = FileWal::open(&path).expect_err("locked");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(e.to_string().contains("in use"), "{e}");
    }
    let mut bytes = header().to_vec();
    bytes.extend(three_records());
    bytes[HEADER + 12] ^= 0x10; // inside the first record's payload
    std::fs::write(&path, &bytes).expect("write");
    let e = FileWal::open(&path).expect_err("corrupt");
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("byte 8 "), "a file offset: {e}");
    assert!(e.to_string().contains("c.wal"), "names the file: {e}");
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "left untouched");
    // Repaired, it opens again and is not new.
    bytes[HEADER + 12] ^= 0x10;
    std::fs::write(&path, &bytes).expect("write");
    let mut w = FileWal::open(&path).expect("open");
    assert!(!w.was_empty());
    assert_eq!(w.replay().expect("replay"), vec![rec(1), rec(2), rec(3)]);
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rpc-wal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

#[test]
fn a_version_1_log_is_refused_and_left_alone() {
    let dir = temp_dir("v1");
    let path = dir.join("old.wal");
    // A version 1 log: records from the first byte, no header.
    let bytes = three_records();
    std::fs::write(&path, &bytes).expect("write");
    let e = FileWal::open(&path).expect_err("old format");
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("version 1"), "{e}");
    assert!(e.to_string().contains("old.wal"), "{e}");
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "untouched");
    // A header with another version number.
    let mut other = header().to_vec();
    other[7] = 9;
    std::fs::write(&path, &other).expect("write");
    let e = FileWal::open(&path).expect_err("unknown version");
    assert!(e.to_string().contains("version 9"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_header_is_a_new_log_and_a_missing_file_is_created() {
    let dir = temp_dir("header");
    let path = dir.join("h.wal");
    for keep in 0..HEADER {
        std::fs::write(&path, &header()[..keep]).expect("write");
        let mut w = FileWal::open(&path).expect("open");
        assert!(w.was_empty(), "keep {keep}");
        assert_eq!(w.replay().expect("replay"), vec![]);
        w.append(&rec(1)).expect("append");
        w.sync().expect("sync");
        drop(w);
        let w = FileWal::open(&path).expect("reopen");
        assert!(!w.was_empty());
        assert_eq!(FileWal::read_records(&path).expect("read"), vec![rec(1)]);
    }
    // A whole header and nothing else: still new (seeded).
    std::fs::write(&path, header()).expect("write");
    assert!(FileWal::open(&path).expect("open").was_empty());
    // A torn first record after it: not new (never seeded again).
    let mut torn = header().to_vec();
    let mut one = Vec::new();
    encode_record(&mut one, &rec(1)).expect("encode");
    torn.extend_from_slice(&one[..one.len() / 2]);
    std::fs::write(&path, &torn).expect("write");
    assert!(!FileWal::open(&path).expect("open").was_empty());
    std::fs::remove_file(&path).expect("rm");
    let w = FileWal::open(&path).expect("create");
    assert!(w.was_empty());
    assert_eq!(w.size(), HEADER as u64);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flipped_bit_in_the_middle_of_a_file_names_its_offset() {
    let dir = temp_dir("middle");
    let path = dir.join("m.wal");
    {
        let mut w = FileWal::open(&path).expect("open");
        for i in 1..=5 {
            w.append(&rec(i)).expect("append");
        }
        w.sync().expect("sync");
    }
    let mut one = Vec::new();
    encode_record(&mut one, &rec(1)).expect("encode");
    let mut bytes = std::fs::read(&path).expect("read");
    let third = HEADER + 2 * one.len();
    bytes[third + 10] ^= 0x04;
    std::fs::write(&path, &bytes).expect("write");
    let e = FileWal::open(&path).expect_err("corrupt");
    assert!(
        e.to_string().contains(&format!("byte {third} ")),
        "names the offset of the third record: {e}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "untouched");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rewrite_replaces_the_log_and_keeps_the_lock() {
    let dir = temp_dir("rewrite");
    let path = dir.join("r.wal");
    let mut w = FileWal::open(&path).expect("open");
    for i in 1..=10 {
        w.append(&rec(i)).expect("append");
    }
    w.sync().expect("sync");
    let big = w.size();
    w.append(&rec(11)).expect("append"); // unsynced: subsumed by the rewrite
    w.rewrite(&[rec(7)]).expect("rewrite");
    assert!(w.size() < big);
    assert_eq!(w.replay().expect("replay"), vec![rec(7)]);
    w.append(&rec(8)).expect("append");
    w.sync().expect("sync");
    assert_eq!(w.replay().expect("replay"), vec![rec(7), rec(8)]);
    let e = FileWal::open(&path).expect_err("still locked after the rename");
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    assert!(!compact_path(&path).exists());
    drop(w);
    assert_eq!(
        FileWal::open(&path)
            .expect("open")
            .replay()
            .expect("replay"),
        vec![rec(7), rec(8)]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A crash at each step of a compaction: the log reopens as either the old
/// records or the checkpoint, and a participant recovers the same balances
/// and outcomes from either.
#[test]
fn a_crash_at_each_step_of_a_compaction_recovers_right() {
    use crate::twopc::{Bank, BankOp, Participant, ParticipantConfig};
    use std::time::Instant;
    let now = Instant::now();
    let initial = Bank::new([("alice", 100), ("bob", 0)]);
    let mut p = Participant::new(1, initial.clone(), ParticipantConfig::default());
    let mut records = vec![p.checkpoint_record()];
    let tx = |seq| TxId {
        coordinator: 0,
        seq,
        nonce: 77,
    };
    // Ten committed transfers of 5 alice -> bob, one still READY.
    for seq in 1..=11 {
        p.handle_message(
            now,
            0,
            Msg::Prepare {
                tx: tx(seq),
                participants: vec![1],
                work: BankOp::work(&[("alice", -5), ("bob", 5)]),
            },
        );
        if seq <= 10 {
            p.handle_message(
                now,
                0,
                Msg::Decision {
                    tx: tx(seq),
                    commit: true,
                },
            );
        }
    }
    p.handle_message(
        now,
        0,
        Msg::Finished {
            tx: tx(10),
            below: 8,
        },
    );
    for e in p.drain_effects() {
        if let crate::twopc::Effect::Log(r) = e {
            records.push(r);
        }
    }
    let checkpoint = p.checkpoint_record();
    let check = |got: &[LogRecord], what: &str| {
        let r = Participant::recover(1, initial.clone(), ParticipantConfig::default(), got, now)
            .expect("recover");
        assert_eq!(r.resource().balance("alice"), Some(50), "{what}");
        assert_eq!(r.resource().balance("bob"), Some(50), "{what}");
        assert_eq!(
            r.resource().locked(),
            2,
            "{what}: the READY one keeps its locks"
        );
        assert_eq!(
            r.status(tx(11)),
            Some(crate::twopc::PartState::Ready),
            "{what}"
        );
        assert_eq!(
            r.status(tx(9)),
            Some(crate::twopc::PartState::Committed),
            "{what}"
        );
        assert!(r.forgot(tx(3)), "{what}: below the watermark");
        assert_eq!(r.watermark(0), 8, "{what}");
    };
    check(&records, "the full log");
    check(std::slice::from_ref(&checkpoint), "the checkpoint");
    let steps = [
        Some(Step::HalfWritten),
        Some(Step::Written),
        Some(Step::Synced),
        Some(Step::Renamed),
        None,
    ];
    let dir = temp_dir("compact-crash");
    for stop in steps {
        let path = dir.join("c.wal");
        let _ = std::fs::remove_file(&path);
        let mut w = FileWal::open(&path).expect("open");
        for r in &records {
            w.append(r).expect("append");
        }
        w.sync().expect("sync");
        w.rewrite_steps(std::slice::from_ref(&checkpoint), stop)
            .expect("rewrite");
        drop(w); // the crash
        let mut again = FileWal::open(&path).expect("reopen");
        assert!(!compact_path(&path).exists(), "{stop:?}: leftover removed");
        let got = again.replay().expect("replay");
        let want = match stop {
            Some(Step::Renamed) | None => vec![checkpoint.clone()],
            _ => records.clone(),
        };
        assert_eq!(got, want, "{stop:?}");
        check(&got, &format!("crash after {stop:?}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
