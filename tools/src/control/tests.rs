use super::*;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

use sockets_api::{Stack, StackBuilder, TcpListener, TcpStream};

fn pair() -> (Stack, Stack) {
    StackBuilder::memory_pair(
        StackBuilder::memory()
            .addr("10.0.0.1/24".parse().unwrap())
            .seed(1),
        StackBuilder::memory()
            .addr("10.0.0.2/24".parse().unwrap())
            .seed(2),
    )
    .unwrap()
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ustack-control-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ctl.sock")
}

#[test]
fn counters_answer_parses_back() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&a, "0.0.0.0:80").unwrap();
    let _c = TcpStream::connect(&b, "10.0.0.1:80").unwrap();
    let _s = listener.accept().unwrap();
    let stats = ControlStats::default();
    let text = answer("counters\n", &a.observer(), &stats);
    let lines = parse_answer(&text).unwrap();
    let snap = parse_counters(&lines).unwrap();
    assert_eq!(snap.get("tcp_passive_opens"), Some(1));
    assert!(snap.get("frames_in").unwrap() > 0);
    assert_eq!(snap.get("drop_tcp_bad_checksum"), Some(0));
    // The request being answered is counted.
    assert_eq!(snap.get("control_requests"), Some(1));
    assert!(
        snap.counters
            .iter()
            .any(|c| c.name == "memory_used" && c.gauge)
    );
    assert_eq!(snap.states.len(), TCP_STATES.len());
    assert!(snap.states.contains(&("ESTAB".to_string(), 1)));
    assert!(snap.states.contains(&("TIME-WAIT".to_string(), 0)));
    assert_eq!(stats.requests.load(Ordering::Relaxed), 1);
}

#[test]
fn sockets_answer_lists_tcp_details() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&a, "0.0.0.0:80").unwrap();
    let mut c = TcpStream::connect(&b, "10.0.0.1:80").unwrap();
    let (mut s, _) = listener.accept().unwrap();
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    let text = answer("sockets", &a.observer(), &ControlStats::default());
    let rows = parse_sockets(&parse_answer(&text).unwrap()).unwrap();
    let listen = rows.iter().find(|r| r.get("state") == "LISTEN").unwrap();
    assert_eq!(listen.get("local"), "0.0.0.0:80");
    assert_eq!(listen.get("peer"), "*");
    assert_eq!(listen.get("cc"), "");
    let est = rows.iter().find(|r| r.get("state") == "ESTAB").unwrap();
    assert_eq!(est.get("kind"), "tcp");
    assert_eq!(est.get("local"), "10.0.0.1:80");
    assert!(est.get("peer").starts_with("10.0.0.2:"));
    assert!(est.get("cwnd").parse::<u64>().unwrap() > 0);
    assert_eq!(est.get("bytes_received"), "4");
    assert!(!est.get("cc").is_empty());
}

#[test]
fn bad_requests_are_errors_and_counted() {
    let (a, _b) = pair();
    let stats = ControlStats::default();
    let text = answer("shutdown now", &a.observer(), &stats);
    assert!(text.starts_with("error unknown request"));
    assert!(text.ends_with("end\n"));
    assert!(parse_answer(&text).unwrap_err().contains("unknown request"));
    assert_eq!(stats.bad_requests.load(Ordering::Relaxed), 1);
    assert_eq!(
        parse_answer("version ustack-control/1\nend\n").unwrap(),
        vec!["version ustack-control/1".to_string()]
    );
    // Truncated or malformed answers are errors, never panics.
    assert!(parse_answer("counter frames_in 3\n").is_err());
    assert!(parse_answer("").is_err());
    assert!(parse_counters(&["counter frames_in".to_string()]).is_err());
    assert!(parse_counters(&["counter frames_in x".to_string()]).is_err());
    assert!(parse_counters(&["bogus a 1".to_string()]).is_err());
    assert!(parse_sockets(&["socket kind".to_string()]).is_err());
    assert!(parse_sockets(&["sock kind=tcp".to_string()]).is_err());
}

#[test]
fn socket_is_private_answers_and_replaces_a_stale_one() {
    let (a, _b) = pair();
    let path = temp_path("serve");
    // A stale socket (nobody listening) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    serve(&path, a.observer()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        query(&path, "version").unwrap(),
        vec![format!("version {PROTOCOL}")]
    );
    let snap = parse_counters(&query(&path, "counters").unwrap()).unwrap();
    assert_eq!(snap.get("control_requests"), Some(2));
    assert!(
        query(&path, "nonsense")
            .unwrap_err()
            .contains("unknown request")
    );

    // A request over the limit is refused, and the server carries on.
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(&vec![b'x'; MAX_REQUEST + 10]).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("error request longer than"));
    assert!(query(&path, "sockets").is_ok());

    // A live one is not taken over; a file that is not a socket is refused.
    assert!(serve(&path, a.observer()).is_err());
    let file = path.with_file_name("plain");
    std::fs::write(&file, b"x").unwrap();
    assert!(
        serve(&file, a.observer())
            .unwrap_err()
            .to_string()
            .contains("not a socket")
    );
    assert!(query(&file.with_file_name("absent"), "counters").is_err());
}
