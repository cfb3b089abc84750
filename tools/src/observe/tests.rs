use super::*;

use crate::control::{Counter, parse_sockets};

fn ss_args(flags: &str) -> SsArgs {
    SsArgs {
        control: PathBuf::from("/x"),
        tcp: flags.contains('t'),
        udp: flags.contains('u'),
        listening: flags.contains('l'),
        all: flags.contains('a'),
        info: flags.contains('i'),
        numeric: flags.contains('n'),
    }
}

fn rows() -> Vec<SocketRow> {
    let lines: Vec<String> = [
        "socket kind=tcp state=LISTEN local=0.0.0.0:80 peer=* recvq=0 sendq=0 orphan=0",
        "socket kind=tcp state=ESTAB local=10.0.0.1:80 peer=10.0.0.2:40000 recvq=5 sendq=1448 \
         orphan=0 cc=cubic cwnd=14480 ssthresh=- srtt_us=1500 rttvar_us=750 min_rtt_us=1000 \
         rto_us=201000 mss=1448 in_flight=1448 snd_wnd=65535 rcv_wnd=65535 bytes_sent=1448 \
         bytes_retrans=0 bytes_acked=0 bytes_received=5 delivery_rate=1250000 segs_out=3 segs_in=3 retrans_fast=0 \
         retrans_rto=0 rto_count=0 fast_recoveries=0 lost_retrans=0 tlp=0 sacked=0 \
         sacked_total=0 dsacks=0 out_of_order=0 zero_window_probes=0 challenge_acks=0 \
         paws_drops=0 sack=1 ts=1 wscale=7,7 pacing_rate=2500000 pacing_waits=4",
        "socket kind=tcp state=ESTAB local=10.0.0.1:80 peer=10.0.0.4:40001 recvq=0 sendq=0 \
         orphan=0 cc=bbr cwnd=28960 ssthresh=- srtt_us=1500 rttvar_us=750 min_rtt_us=1000 \
         rto_us=201000 mss=1448 in_flight=0 bbr_mode=probe_bw bbr_bw=12500000 \
         bbr_min_rtt_us=1000 bbr_pacing_gain=1.250 pacing_rate=15468750 pacing_waits=0",
        "socket kind=tcp state=TIME-WAIT local=10.0.0.1:80 peer=10.0.0.3:1 recvq=0 sendq=0 orphan=1",
        "socket kind=udp state=UNCONN local=0.0.0.0:7 peer=* recvq=0 sendq=0 orphan=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    parse_sockets(&lines).unwrap()
}

#[test]
fn ss_filters_like_ss() {
    let rows = rows();
    let text = render_ss(&rows, &ss_args("tn"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Netid State"));
    assert!(lines[0].contains("Recv-Q Send-Q Local Address:Port"));
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].contains("ESTAB") && lines[1].contains("10.0.0.2:40000"));
    assert!(lines[3].contains("TIME-WAIT"));

    let listening = render_ss(&rows, &ss_args("l"));
    assert!(listening.contains("LISTEN") && listening.contains("UNCONN"));
    assert!(!listening.contains("ESTAB"));
    let udp = render_ss(&rows, &ss_args("ua"));
    assert_eq!(udp.lines().count(), 2);
    assert!(udp.contains("*:*"));
    assert_eq!(render_ss(&rows, &ss_args("a")).lines().count(), 6);
}

#[test]
fn ss_info_adds_tcp_details() {
    let text = render_ss(&rows(), &ss_args("ti"));
    let details: Vec<&str> = text.lines().filter(|l| l.starts_with('\t')).collect();
    assert_eq!(details.len(), 2, "{text}");
    assert!(
        details[1].contains("bbr:(mode:probe_bw,bw:100.0Mbps,mrtt:1.000,pacing_gain:1.250)")
            && details[1].contains("pacing_rate:123.8Mbps"),
        "{}",
        details[1]
    );
    assert!(!details[0].contains("bbr:"));
    let d = details[0];
    for want in [
        "cubic",
        "cwnd:14480",
        "ssthresh:-",
        "rtt:1.500/0.750",
        "rto:201.000",
        "mss:1448",
        "bytes_received:5",
        "wscale:7,7",
        "sack:1",
        "send:77.2Mbps",
        "delivery_rate:10.0Mbps",
        "pacing_rate:20.0Mbps pacing_waits:4",
    ] {
        assert!(d.contains(want), "{want} missing in {d}");
    }
}

fn snap(frames: u64, used: u64) -> CounterSnapshot {
    CounterSnapshot {
        counters: vec![
            Counter {
                name: "frames_in".into(),
                value: frames,
                gauge: false,
            },
            Counter {
                name: "drop_tcp_bad_checksum".into(),
                value: 0,
                gauge: false,
            },
            Counter {
                name: "memory_used".into(),
                value: used,
                gauge: true,
            },
        ],
        states: vec![("ESTAB".into(), 2), ("TIME-WAIT".into(), 0)],
    }
}

#[test]
fn stats_text_json_and_rates() {
    let s = snap(10, 4096);
    let text = render_stats(&s);
    assert!(text.contains("frames_in"));
    assert!(text.contains("memory_used") && text.contains("(gauge)"));
    assert!(text.contains("ESTAB"));

    let json = render_json(&s, None);
    assert_eq!(
        json,
        "{\"schema\": \"ustack-stats/1\", \"counters\": {\"frames_in\": 10, \
         \"drop_tcp_bad_checksum\": 0}, \"gauges\": {\"memory_used\": 4096}, \
         \"tcp_states\": {\"ESTAB\": 2, \"TIME-WAIT\": 0}}"
    );
    let later = snap(30, 8192);
    let json = render_json(&later, Some((&s, 2.0)));
    assert!(json.contains("\"interval_secs\": 2.000"));
    assert!(json.contains("\"rates\": {\"frames_in\": 10.000, \"drop_tcp_bad_checksum\": 0.000}"));

    let rates = render_rates(&s, &later, 2.0);
    assert!(rates.contains("frames_in") && rates.contains("10.0/s"));
    assert!(rates.contains("memory_used") && rates.contains("(was 4096)"));
    assert!(!rates.contains("drop_tcp_bad_checksum"));
    assert!(render_rates(&s, &s, 1.0).contains("nothing moved"));
    assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
}
