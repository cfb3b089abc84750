#!/usr/bin/env bash
# Fragmentation and reassembly against Linux at MTU 1500 and 576: large
# pings, UDP echo of 1 to 65,507 bytes, ECONNREFUSED from a closed port.
# USTACK_MEDIUM=tun runs it on a TUN device.
source "$(dirname "$0")/../lib.sh"

for mtu in 1500 576; do
    OUT=$(test_out_dir "fragments-udp-$mtu")
    netns_new NS "frag$mtu"
    start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/ustack.log" \
        --mtu "$mtu" --udp-echo 7 --pcap "$OUT/frag.pcap"
    for size in 8000 65000; do
        result=$(in_ns "$NS" ping -c 5 -i 0.05 -W 3 -s "$size" 10.0.0.2)
        grep -q ' 5 received, 0% packet loss' <<<"$result" ||
            { echo "$result" >&2; die "MTU $mtu: ping -s $size lost replies"; }
        ok "MTU $mtu: ping -s $size: 5/5 replies (fragmented both ways)"
    done
    in_ns "$NS" timeout 60 python3 "$USTACK_ROOT/scripts/tools/udp_echo_check.py" \
        10.0.0.2 7 9999 1 1472 1473 8000 65507 | sed "s/^ok/  ok MTU $mtu:/" >&2 ||
        die "MTU $mtu: UDP echo check failed"
    stop_pid "$USTACK"
    if [[ $USTACK_MEDIUM == tun ]]; then
        frags=$(count_frames "$OUT/frag.pcap" 'ip.flags.mf == 1')
    else
        frags=$(count_frames "$OUT/frag.pcap" 'ip.flags.mf == 1 && eth.src != 00:00:00:00:00:00')
    fi
    big=$(count_frames "$OUT/frag.pcap" "frame.len > $((mtu + $(link_header_len)))")
    ((big == 0)) || die "MTU $mtu: $big frames exceed the MTU"
    check_pcap "$OUT/frag.pcap"
    ok "MTU $mtu: capture clean, $frags fragments, no frame above the MTU"
    grep -q 'datagrams reassembled' "$OUT/ustack.log" || die "no fragment counters"
done
