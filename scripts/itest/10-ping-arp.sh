#!/usr/bin/env bash
# Linux ping and arping against a ustack host; the capture must be clean.
source "$(dirname "$0")/../lib.sh"

OUT=$(test_out_dir ping-arp)
netns_new NS ping
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/ustack.log" --pcap "$OUT/ping.pcap"

for size in 0 56 1472; do
    result=$(in_ns "$NS" ping -c 20 -i 0.05 -W 2 -s "$size" 10.0.0.2)
    grep -q ' 20 received, 0% packet loss' <<<"$result" ||
        { echo "$result" >&2; die "ping -s $size lost replies"; }
    ok "ping -s $size: 20/20 replies"
done

result=$(in_ns "$NS" arping -c 3 -w 5 -I tap0 10.0.0.2)
grep -q 'Received 3 response' <<<"$result" || { echo "$result" >&2; die "arping"; }
ok "arping: 3/3 replies"

stop_pid "$USTACK"
grep -q 'frames in:' "$OUT/ustack.log" || die "no counter summary on SIGINT"
grep -q 'echo replies sent' "$OUT/ustack.log" || die "no ICMP counters"
ok "SIGINT: clean stop, counters printed"

replies=$(count_frames "$OUT/ping.pcap" 'icmp.type == 0')
((replies >= 60)) || die "capture holds $replies echo replies, expected 60"
check_pcap "$OUT/ping.pcap" strict
ok "capture: $replies echo replies, no malformed frame or bad checksum"
