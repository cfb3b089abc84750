use super::super::TxId;
use super::*;

fn rec(seq: u64) -> LogRecord {
    LogRecord::Begin {
        tx: TxId {
            coordinator: 1,
            seq,
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
    let mut bytes = three_records();
    bytes[12] ^= 0x10; // inside the first record's payload
    std::fs::write(&path, &bytes).expect("write");
    let e = FileWal::open(&path).expect_err("corrupt");
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("byte 0"), "{e}");
    assert!(e.to_string().contains("c.wal"), "names the file: {e}");
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "left untouched");
    // Repaired, it opens again and is not new.
    bytes[12] ^= 0x10;
    std::fs::write(&path, &bytes).expect("write");
    let mut w = FileWal::open(&path).expect("open");
    assert!(!w.was_empty());
    assert_eq!(w.replay().expect("replay"), vec![rec(1), rec(2), rec(3)]);
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
}
