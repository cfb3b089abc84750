#!/usr/bin/env bash
# iperf3 compatibility: Linux's real `iperf3 -c` against `ustack serve
# --iperf3 5201` (TCP, -R, -P 4, UDP -b 100M, --bidir, UDP -R, a busy
# server), then `ustack iperf3 -c` against Linux's `iperf3 -s` (TCP, -R,
# -P 4, UDP). Every run must exit 0 and move a non-zero, consistent
# number of bytes (the receiver's count no more than the sender's, and
# most of it).
source "$(dirname "$0")/../lib.sh"
ensure_tools iperf3:iperf3 python3:python3

OUT=$(test_out_dir iperf3)
netns_new NS iperf3
DEVICE=(--tap tap0)
[[ $USTACK_MEDIUM == tun ]] && DEVICE=(--tun tun0)
log "$(iperf3 --version | head -1)"

# Directions where ustack sends are capped at 3 Gbit/s per stream: the
# runs stay well under 2 GiB per connection.
CAP=(-b 3G)

# check_json FILE WHAT STREAMS: the client's --json report of a TCP run.
check_tcp_json() {
    python3 - "$1" "$3" <<'EOF' || die "$2: $(cat "$1" | head -c 2000)"
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    sys.exit("iperf3 error: " + r["error"])
end = r["end"]
sent, recv = end["sum_sent"]["bytes"], end["sum_received"]["bytes"]
streams = len(end["streams"])
assert streams == int(sys.argv[2]), f"{streams} streams"
assert sent > 0 and recv > 0, (sent, recv)
assert recv <= sent and recv >= sent // 2, (sent, recv)
for s in end["streams"]:
    assert s["sender"]["bytes"] > 0 and s["receiver"]["bytes"] > 0, s
print(f"{sent} bytes sent, {recv} received, "
      f"{end['sum_received']['bits_per_second'] / 1e9:.2f} Gbit/s")
EOF
}

# --- iperf3 -c against ustack serve --iperf3 ------------------------------------
start_host SRV "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/serve.log" --iperf3 5201
ipc() { in_ns "$NS" timeout 60 iperf3 -c 10.0.0.2 -p 5201 "$@"; }

ipc -t 2 --json >"$OUT/tcp.json" || die "iperf3 -c (TCP) exited $?"
ok "iperf3 -c → ustack, TCP: $(check_tcp_json "$OUT/tcp.json" "TCP" 1)"
ipc -t 2 -R "${CAP[@]}" --json >"$OUT/reverse.json" || die "iperf3 -c -R exited $?"
ok "iperf3 -c -R → ustack sends: $(check_tcp_json "$OUT/reverse.json" "-R" 1)"
ipc -t 2 -P 4 --json >"$OUT/parallel.json" || die "iperf3 -c -P 4 exited $?"
ok "iperf3 -c -P 4 → ustack: $(check_tcp_json "$OUT/parallel.json" "-P 4" 4)"
ipc -t 2 -u -b 100M --json >"$OUT/udp.json" || die "iperf3 -c -u exited $?"
udp=$(python3 - "$OUT/udp.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    sys.exit("iperf3 error: " + r["error"])
s = r["end"]["sum"]
assert s["bytes"] > 0 and s["packets"] > 0, s
# 100 Mbit/s for 2 s: some 20 MB, and the receiver lost little of it.
assert s["bytes"] > 10_000_000, s
assert s["lost_packets"] * 10 < s["packets"], s
print(f"{s['bytes']} bytes, {s['packets']} datagrams, {s['lost_packets']} lost, jitter {s['jitter_ms']:.3f} ms")
EOF
) || die "iperf3 -c -u: $udp"
ok "iperf3 -c -u -b 100M → ustack: $udp"
ipc -t 2 --bidir "${CAP[@]}" --json >"$OUT/bidir.json" || die "iperf3 -c --bidir exited $?"
ok "iperf3 -c --bidir <-> ustack: $(check_tcp_json "$OUT/bidir.json" "--bidir" 2)"
ipc -t 2 -u -b 50M -R --json >"$OUT/udp-reverse.json" || die "iperf3 -c -u -R exited $?"
udp=$(python3 - "$OUT/udp-reverse.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    sys.exit("iperf3 error: " + r["error"])
s = r["end"]["sum"]
assert s["bytes"] > 5_000_000 and s["packets"] > 0, s
assert s["lost_packets"] * 10 < s["packets"], s
print(f"{s['bytes']} bytes, {s['packets']} datagrams, {s['lost_packets']} lost")
EOF
) || die "iperf3 -c -u -R: $udp"
ok "iperf3 -c -u -b 50M -R, ustack sends: $udp"
# A second client while a test runs is refused, like iperf3's own server.
ipc -t 3 --forceflush >"$OUT/long.txt" 2>&1 &
LONG=$!
cleanup_push "kill $LONG"
wait_until 5 grep -q 'sec' "$OUT/long.txt" || die "the long test did not start"
status=0
busy=$(ipc -t 1 2>&1) || status=$?
((status != 0)) && grep -qi 'busy' <<<"$busy" || die "second client: exit $status: $busy"
wait "$LONG" || die "the long test failed while a second client was refused"
ok "a second client during a test: refused ($(tail -1 <<<"$busy"))"
stop_pid "$SRV"
totals=$(grep '^iperf3-totals:' "$OUT/serve.log") || { cat "$OUT/serve.log" >&2; die "no iperf3 totals"; }
grep -q 'tests=7 failed=0 refused=1' <<<"$totals" || die "serve totals: $totals"
ok "ustack serve counted them: $totals"

# --- ustack iperf3 -c against iperf3 -s -----------------------------------------
bg_start IPS "$OUT/iperf3-s.log" "$NS" iperf3 -s -p 5202
wait_until 10 in_ns "$NS" bash -c 'exec 3<>/dev/tcp/127.0.0.1/5202' || die "iperf3 -s did not start"
uic() {
    in_ns "$NS" timeout 60 "$USTACK_BIN" iperf3 "${DEVICE[@]}" --addr 10.0.0.2/24 \
        --host-addr 10.0.0.1/24 -c 10.0.0.1 -p 5202 "$@"
}
# check_summary OUTPUT WHAT: the iperf3-summary line moved consistent bytes.
check_summary() {
    local line sent recv
    line=$(grep '^iperf3-summary:' <<<"$1") || die "$2: no summary: $1"
    sent=$(grep -o ' sent_bytes=[0-9]*' <<<"$line" | cut -d= -f2)
    recv=$(grep -o ' received_bytes=[0-9]*' <<<"$line" | cut -d= -f2)
    ((sent > 0 && recv > 0 && recv <= sent && recv * 2 >= sent)) || die "$2: $line"
    echo "$sent bytes sent, $recv received, $(grep -o 'receiver_bps=[0-9]*' <<<"$line")"
}
for run in "TCP:-t 2 ${CAP[*]}" "-R:-t 2 -R" "-P 4:-t 2 -P 4 ${CAP[*]}" "UDP:-t 2 -u -b 100M"; do
    what=${run%%:*}
    # shellcheck disable=SC2206
    flags=(${run#*:})
    result=$(uic "${flags[@]}" 2>&1) || { echo "$result" >&2; die "ustack iperf3 -c $what failed"; }
    ok "ustack iperf3 -c $what → iperf3 -s: $(check_summary "$result" "$what")"
done
grep -q 'receiver' "$OUT/iperf3-s.log" || die "iperf3 -s printed no summary"
stop_pid "$IPS"
ok "iperf3 -s reported every test"
