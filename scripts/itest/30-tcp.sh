#!/usr/bin/env bash
# TCP against Linux: bulk transfers both ways, echo under fault injection,
# 1,000 concurrent connections, refusal, half-close, resets, clean captures.
source "$(dirname "$0")/../lib.sh"

CHECK="$USTACK_ROOT/scripts/tools/tcp_check.py"
OUT=$(test_out_dir tcp)
netns_new NS tcp
# The 1,000 concurrent connections all come from Linux's one address:
# above --max-conns-per-ip's default (256).
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/ustack.log" \
    --echo 7 --discard 9 --chargen 19 --pcap "$OUT/tcp.pcap" --max-conns-per-ip 1000

in_ns "$NS" timeout 120 python3 "$CHECK" echo 10.0.0.2 7 $((64 << 20)) >&2 || die "64 MiB echo"
in_ns "$NS" timeout 120 python3 "$CHECK" refused 10.0.0.2 4444 >&2 || die "refused"
in_ns "$NS" timeout 60 python3 "$CHECK" halfclose 10.0.0.2 7 >&2 || die "half-close"
in_ns "$NS" timeout 60 python3 "$CHECK" reset 10.0.0.2 7 >&2 || die "reset"
in_ns "$NS" timeout 180 python3 "$CHECK" many 10.0.0.2 7 1000 >&2 || die "1000 connections"
stop_pid "$USTACK"
grep -Eq '^services-totals: .*\bresets=1( |$)' "$OUT/ustack.log" || { tail "$OUT/ustack.log" >&2; die "ustack did not see the RST"; }
ok "ustack saw the peer's RST (exit summary: resets=1)"
check_pcap "$OUT/tcp.pcap"
ok "capture of the clean-link runs: no malformed frame, no bad checksum"

# Bulk transfers without a capture (the pcap writer would be the bottleneck).
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/bulk.log" --discard 9 --chargen 19
in_ns "$NS" timeout 120 python3 "$CHECK" discard 10.0.0.2 9 $((256 << 20)) >&2 || die "256 MiB discard"
in_ns "$NS" timeout 120 python3 "$CHECK" chargen 10.0.0.2 19 $((256 << 20)) >&2 || die "256 MiB chargen"
# Past 2 GiB and 4 GiB sent, sequence numbers wrap against the initial
# one (a connection once stalled there): 4.5 GiB, pattern checked.
in_ns "$NS" timeout 180 "$USTACK_ROOT/target/release/tcp-load" chargen --target 10.0.0.2:19 \
    --bytes $((9 << 29)) >&2 || die "4.5 GiB chargen (sequence wrap)"
ok "4.5 GiB from chargen, pattern verified (the sequence space wrapped)"
stop_pid "$USTACK"

# Echo with loss, reordering, duplication and corruption in both directions.
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/faults.log" --echo 7 \
    --loss 0.02 --reorder 0.02 --dup 0.01 --corrupt 0.01 --seed 42
in_ns "$NS" timeout 300 python3 "$CHECK" echo 10.0.0.2 7 $((64 << 20)) >&2 || die "64 MiB echo with faults"
stop_pid "$USTACK"
grep -q 'tcp: bad checksum' "$OUT/faults.log" || die "corrupted segments were not caught by checksums"
ok "with --loss 0.02 --reorder 0.02 --dup 0.01 --corrupt 0.01: byte-exact; corrupted segments dropped by checksum"
