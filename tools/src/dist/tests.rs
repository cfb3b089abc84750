use super::*;
use clap::Parser;

#[derive(Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand, Debug)]
enum Top {
    Rpc(RpcArgs),
    #[command(name = "2pc")]
    TwoPc(TwoPcArgs),
}

const STACK: &[&str] = &["--tap", "t0", "--addr", "10.0.0.5/24", "--key-file", "/k"];

fn parse(args: &[&str]) -> Result<Top, clap::Error> {
    let mut v = vec!["ustack"];
    v.extend_from_slice(args);
    v.extend_from_slice(STACK);
    Cli::try_parse_from(v).map(|c| c.command)
}

#[test]
fn node_commands_parse() {
    let Top::TwoPc(TwoPcArgs {
        command: TwoPcCommand::Participant(p),
    }) = parse(&[
        "2pc",
        "participant",
        "--id",
        "2",
        "--names",
        "10.0.0.1:5000",
        "--listen",
        "7000",
        "--log",
        "/tmp/x",
        "--accounts",
        "bob=5",
        "--crash-at",
        "ready-logged:2",
    ])
    .expect("parse")
    else {
        panic!("not a participant");
    };
    assert_eq!(p.node.id, 2);
    assert_eq!(p.node.names.port(), 5000);
    assert_eq!(p.node.crash_at.map(|c| c.nth), Some(2));
    assert_eq!(p.node.lease_ms, 3000);
    assert!(
        parse(&[
            "2pc",
            "coordinator",
            "--id",
            "0",
            "--names",
            "10.0.0.1:5000",
            "--listen",
            "7000",
            "--log",
            "/tmp/x",
            "--crash-at",
            "nowhere",
        ])
        .is_err()
    );
    assert!(parse(&["rpc", "names", "--listen", "5000"]).is_ok());
}

#[test]
fn client_commands_parse() {
    let Top::TwoPc(TwoPcArgs {
        command: TwoPcCommand::Transfer(t),
    }) = parse(&[
        "2pc",
        "transfer",
        "--names",
        "10.0.0.1:5000",
        "--from",
        "bank-1:alice",
        "--to",
        "bank-2:bob",
        "--amount",
        "30",
    ])
    .expect("parse")
    else {
        panic!("not a transfer");
    };
    assert_eq!((t.amount, t.coordinator.as_str()), (30, "coordinator"));
    assert!(
        parse(&["2pc", "status", "--names", "10.0.0.1:5000"]).is_err(),
        "needs --node"
    );
    assert!(
        parse(&[
            "2pc",
            "check",
            "--names",
            "10.0.0.1:5000",
            "--node",
            "coordinator",
            "--node",
            "bank-1",
            "--expect-total",
            "300",
            "--settle",
            "-1",
        ])
        .is_err(),
        "negative settle time"
    );
    assert!(
        parse(&[
            "2pc", "transfer", "--names", "nowhere", "--from", "a", "--to", "b"
        ])
        .is_err()
    );
}

#[test]
fn every_command_needs_a_key_file_and_keygen_takes_one() {
    let no_key = |args: &[&str]| {
        let mut v = vec!["ustack"];
        v.extend_from_slice(args);
        v.extend_from_slice(&["--tap", "t0", "--addr", "10.0.0.5/24"]);
        Cli::try_parse_from(v).map(|c| c.command)
    };
    for cmd in [
        &["rpc", "names", "--listen", "5000"][..],
        &["rpc", "lookup", "--names", "10.0.0.1:5000", "x"],
        &[
            "2pc",
            "status",
            "--names",
            "10.0.0.1:5000",
            "--node",
            "bank-1",
        ],
        &[
            "2pc",
            "coordinator",
            "--id",
            "0",
            "--names",
            "10.0.0.1:5000",
            "--listen",
            "7000",
            "--log",
            "/tmp/x",
        ],
    ] {
        let e = no_key(cmd).expect_err("no --key-file");
        assert!(e.to_string().contains("--key-file"), "{e}");
        assert!(e.to_string().contains("--keys"), "{e}");
        assert!(parse(cmd).is_ok(), "{cmd:?}");
    }
    let Top::TwoPc(TwoPcArgs {
        command: TwoPcCommand::Keygen(k),
    }) = Cli::try_parse_from(["ustack", "2pc", "keygen", "--key-file", "/tmp/k"])
        .expect("parse")
        .command
    else {
        panic!("not keygen");
    };
    assert_eq!(k.key_file, PathBuf::from("/tmp/k"));
}

#[test]
fn a_key_ring_replaces_the_shared_key_but_not_both() {
    let with = |extra: &[&str]| {
        let mut v = vec![
            "ustack",
            "rpc",
            "names",
            "--listen",
            "5000",
            "--tap",
            "t0",
            "--addr",
            "10.0.0.5/24",
        ];
        v.extend_from_slice(extra);
        Cli::try_parse_from(v).map(|c| c.command)
    };
    let Ok(Top::Rpc(RpcArgs {
        command: RpcCommand::Names(n),
    })) = with(&["--keys", "/ring"])
    else {
        panic!("--keys alone parses");
    };
    assert_eq!(n.keys.keys, Some(PathBuf::from("/ring")));
    assert_eq!(n.keys.key_file, None);
    assert!(with(&["--keys", "/ring", "--key-file", "/k"]).is_err());
}

#[test]
fn per_node_keys_give_each_id_its_own_key() {
    use super::net::Keys;
    let ring: std::collections::BTreeMap<u64, rpc::AuthKey> = [
        (2, rpc::AuthKey::from_bytes([2; 32])),
        (3, rpc::AuthKey::from_bytes([3; 32])),
    ]
    .into_iter()
    .collect();
    let keys = Keys::PerNode(ring);
    assert_eq!(keys.key_of(3).ok(), Some(rpc::AuthKey::from_bytes([3; 32])));
    let e = keys.client(4).expect_err("no key for 4");
    assert!(e.to_string().contains("no key for id 4"), "{e}");
    assert!(matches!(
        keys.server_config().auth.map(|a| a.keys),
        Some(rpc::ServerKeys::PerNode(k)) if k.len() == 2
    ));
    let shared = Keys::Shared(rpc::AuthKey::from_bytes([1; 32]));
    assert_eq!(
        shared.key_of(99).ok(),
        Some(rpc::AuthKey::from_bytes([1; 32]))
    );
}
