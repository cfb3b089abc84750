use super::*;

use crate::control::{Counter, CounterSnapshot};

fn sample() -> CounterSnapshot {
    let counters = sockets_api::Counters::default();
    let mut snap = snapshot(&counters, &[(tcp::State::Established, 3)]);
    if let Some(c) = snap.counters.iter_mut().find(|c| c.name == "frames_in") {
        c.value = 42;
    }
    snap.counters.push(Counter {
        name: "drop_tcp_bad_checksum".into(),
        value: 5,
        gauge: false,
    });
    snap
}

/// A small checker of the text exposition format: every sample line is
/// `name{labels} value`, its family has one TYPE line before it, names
/// are valid, counters end in `_total`.
fn check_exposition(text: &str) -> Result<usize, String> {
    let mut types: std::collections::HashMap<String, String> = Default::default();
    let mut samples = 0;
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or("bad TYPE line")?;
            if !valid_name(name) || !matches!(kind, "counter" | "gauge") {
                return Err(format!("bad TYPE line {line}"));
            }
            if kind == "counter" && !name.ends_with("_total") {
                return Err(format!("counter without _total: {name}"));
            }
            if types.insert(name.to_string(), kind.to_string()).is_some() {
                return Err(format!("family typed twice: {name}"));
            }
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(format!("unexpected line {line:?}"));
        }
        let (series, value) = line.rsplit_once(' ').ok_or("no value")?;
        value
            .parse::<f64>()
            .map_err(|_| format!("bad value in {line}"))?;
        let name = series.split('{').next().unwrap_or_default();
        if !valid_name(name) || !types.contains_key(name) {
            return Err(format!("sample before its TYPE: {line}"));
        }
        if let Some(labels) = series.strip_prefix(name) {
            let braced = labels.starts_with('{') && labels.ends_with('}');
            if !labels.is_empty() && !braced {
                return Err(format!("bad labels in {line}"));
            }
        }
        samples += 1;
    }
    Ok(samples)
}

#[test]
fn exposition_follows_the_text_format() {
    let text = render(&sample());
    let samples = check_exposition(&text).unwrap();
    assert!(samples > 100);
    assert!(text.contains("\nustack_frames_in_total 42\n"));
    assert!(text.contains("# TYPE ustack_memory_used gauge\n"));
    assert!(text.contains("ustack_drops_total{reason=\"tcp_bad_checksum\"} 5\n"));
    assert!(text.contains("ustack_drops_total{reason=\"ipv4_ttl_zero\"} 0\n"));
    assert!(text.contains("ustack_tcp_connections{state=\"ESTAB\"} 3\n"));
    assert!(text.contains("ustack_tcp_connections{state=\"TIME-WAIT\"} 0\n"));
    assert!(!text.contains("ustack_drops_total_total"));
}

#[test]
fn http_answers() {
    let ok =
        String::from_utf8(respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", sample)).unwrap();
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(ok.contains("Content-Type: text/plain; version=0.0.4"));
    let (head, body) = ok.split_once("\r\n\r\n").unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, body.len());
    let nf = String::from_utf8(respond(b"GET /other HTTP/1.1\r\n\r\n", || unreachable!())).unwrap();
    assert!(nf.starts_with("HTTP/1.1 404"));
    let na = String::from_utf8(respond(
        b"POST /metrics HTTP/1.1\r\n\r\n",
        || unreachable!(),
    ))
    .unwrap();
    assert!(na.starts_with("HTTP/1.1 405"));
    for junk in [&b""[..], b"\xff\xfe", b"GET", b"GET /metrics FTP/1\r\n\r\n"] {
        let r = String::from_utf8(respond(junk, || unreachable!())).unwrap();
        assert!(r.starts_with("HTTP/1.1 400"), "{junk:?}");
    }
}

#[test]
fn serves_over_a_kernel_socket() {
    use std::io::{Read, Write};
    let (a, _b) = sockets_api::StackBuilder::memory_pair(
        sockets_api::StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
        sockets_api::StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
    )
    .unwrap();
    // Find a free port, then serve on it.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    serve(addr, a.observer()).unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    check_exposition(body).unwrap();
    assert!(body.contains("ustack_tcp_connections{state=\"ESTAB\"} 0"));
}
