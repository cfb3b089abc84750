#!/usr/bin/env bash
# Loss recovery against Linux with 1% injected loss in both directions:
# ustack sends (chargen) and recovers mostly by SACK, ustack receives
# (discard) and its ACKs carry SACK blocks so Linux recovers quickly.
source "$(dirname "$0")/../lib.sh"

CHECK="$USTACK_ROOT/scripts/tools/tcp_check.py"
OUT=$(test_out_dir tcp-loss)
netns_new NS tcploss

# Wire-sized frames (--no-offload): tshark classifies retransmissions by
# timing, and among super segments and the runs the injector cuts around
# lost segments it calls many fast ones "out-of-order".
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/chargen.log" --chargen 19 \
    --loss 0.01 --seed 5 --no-offload --pcap "$OUT/chargen.pcap"
in_ns "$NS" timeout 300 python3 "$CHECK" chargen 10.0.0.2 19 $((64 << 20)) >&2 ||
    die "64 MiB from chargen with 1% loss"
stop_pid "$USTACK"
fast=$(count_frames "$OUT/chargen.pcap" 'ip.src == 10.0.0.2 && tcp.analysis.fast_retransmission')
all=$(count_frames "$OUT/chargen.pcap" 'ip.src == 10.0.0.2 && tcp.analysis.retransmission')
ok "tshark: $fast of $all retransmissions by ustack are fast retransmissions"
# The exit summary's machine-readable line: services-totals: key=value ...
summary=$(grep '^services-totals: ' "$OUT/chargen.log")
rto=$(grep -o '\bretrans_rto=[0-9]*' <<<"$summary" | cut -d= -f2)
fastc=$(grep -o '\bretrans_fast=[0-9]*' <<<"$summary" | cut -d= -f2)
ok "ustack counters: $fastc fast (SACK/dup-ACK) retransmissions, $rto after timeouts"
((all > 0 && fast * 10 >= all * 7)) || die "retransmissions are not mostly SACK-driven ($fast of $all)"
((fastc > 0 && rto * 10 < fastc + rto)) || die "too many timeout retransmissions ($rto of $((fastc + rto)))"

start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/discard.log" --discard 9 \
    --loss 0.01 --seed 6 --pcap "$OUT/discard.pcap"
in_ns "$NS" timeout 300 python3 "$CHECK" discard 10.0.0.2 9 $((64 << 20)) >&2 ||
    die "64 MiB into discard with 1% loss"
stop_pid "$USTACK"
sacks=$(count_frames "$OUT/discard.pcap" 'ip.src == 10.0.0.2 && tcp.options.sack_le')
lin_fast=$(count_frames "$OUT/discard.pcap" 'ip.src == 10.0.0.1 && tcp.analysis.fast_retransmission')
lin_all=$(count_frames "$OUT/discard.pcap" 'ip.src == 10.0.0.1 && tcp.analysis.retransmission')
((sacks > 0)) || die "ustack's ACKs carry no SACK blocks"
ok "ustack sent $sacks ACKs with SACK blocks; Linux retransmitted $lin_all segments, $lin_fast of them fast"
