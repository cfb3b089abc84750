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
    assert_eq!(
        FileWal::open(&path)
            .expect("reopen")
            .replay()
            .expect("replay"),
        vec![rec(1), rec(2), rec(4)]
    );
    // A flipped bit fails the CRC: replay stops before that record.
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
