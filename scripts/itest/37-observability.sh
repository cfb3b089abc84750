#!/usr/bin/env bash
# Observability of a running `ustack serve`: --control with `ustack ss -ti`
# and `ustack stats --json` while Linux clients transfer, --metrics scraped
# with curl and checked against the text format, the control socket's
# mode and its removal at exit, the exit summary matching `stats`, and
# bad arguments of ss/stats.
source "$(dirname "$0")/../lib.sh"
require_root
ensure_net_tools

OUT=$(test_out_dir observability)
netns_new NS obs
CTL=$OUT/ctl.sock
METRICS=127.0.0.1:9464
rm -f "$CTL"
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/ustack.log" \
    --discard 9 --echo 7 --udp-echo 7 --control "$CTL" --metrics "$METRICS"
wait_until 5 test -S "$CTL" || die "no control socket at $CTL"
[[ $(stat -c %a "$CTL") == 600 ]] || die "control socket mode is $(stat -c %a "$CTL"), not 600"
ok "control socket $CTL, mode 0600"

ss() { "$USTACK_BIN" ss --control "$CTL" "$@"; }
stats_json() { "$USTACK_BIN" stats --control "$CTL" --json; }

# Two slow uploads to the discard service keep connections ESTAB.
uploads=()
for i in 1 2; do
    in_ns "$NS" timeout 60 python3 -c '
import socket, time, sys
s = socket.create_connection(("10.0.0.2", 9))
end = time.time() + float(sys.argv[1])
while time.time() < end:
    s.sendall(b"x" * 65536)
    time.sleep(0.01)
s.close()
' 8 &
    uploads+=($!)
    cleanup_push "kill $! 2>/dev/null"
done
wait_until 10 bash -c "$(declare -f ss); CTL='$CTL' USTACK_BIN='$USTACK_BIN'; \
    [[ \$(ss -tn | grep -c ESTAB) -ge 2 ]]" || { ss -a >&2; die "ss does not show two ESTAB connections"; }
sleep 1
ss -ti >"$OUT/ss-ti.txt"
cat "$OUT/ss-ti.txt" >&2
grep -q '^Netid *State *Recv-Q *Send-Q *Local Address:Port *Peer Address:Port' "$OUT/ss-ti.txt" ||
    die "ss header"
[[ $(grep -cE '^tcp +ESTAB .*10\.0\.0\.2:9 +10\.0\.0\.1:[0-9]+' "$OUT/ss-ti.txt") == 2 ]] ||
    die "ss -ti does not list the two connections"
grep -P '^\t' "$OUT/ss-ti.txt" | grep -qE 'cwnd:[1-9][0-9]* .*' || die "ss -ti: no non-zero cwnd"
grep -P '^\t' "$OUT/ss-ti.txt" | grep -qE 'rtt:[0-9.]*[1-9][0-9.]*/' || die "ss -ti: no non-zero srtt"
grep -P '^\t' "$OUT/ss-ti.txt" | grep -q 'bytes_received:[1-9]' || die "ss -ti: nothing received"
ss -l | grep -qE '^tcp +LISTEN .*0\.0\.0\.0:9 ' || die "ss -l does not show the discard listener"
ss -lu | grep -qE '^udp +UNCONN .*:7 ' || die "ss -lu does not show the UDP echo socket"
! ss -t | grep -q LISTEN || die "ss -t shows listeners"
ok "ss -ti: two ESTAB connections with cwnd, srtt, bytes; ss -l, -lu: the listeners"

stats_json >"$OUT/stats1.json"
sleep 1
stats_json >"$OUT/stats2.json"
python3 - "$OUT/stats1.json" "$OUT/stats2.json" <<'PY' || die "stats --json"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for d in (a, b):
    assert d["schema"] == "ustack-stats/1", d.get("schema")
    for key in ("counters", "gauges", "tcp_states"):
        assert isinstance(d[key], dict), key
    assert all(isinstance(v, int) for v in d["counters"].values())
    assert "drop_tcp_bad_checksum" in d["counters"]
    assert d["tcp_states"]["ESTAB"] >= 2, d["tcp_states"]
assert b["counters"]["frames_in"] > a["counters"]["frames_in"]
assert b["counters"]["bytes_in"] > a["counters"]["bytes_in"]
assert all(b["counters"][k] >= v for k, v in a["counters"].items())
PY
"$USTACK_BIN" stats --control "$CTL" --watch 0.5 --count 1 >"$OUT/watch.txt" || die "stats --watch"
grep -q 'frames_in .*/s' "$OUT/watch.txt" || { cat "$OUT/watch.txt" >&2; die "stats --watch shows no rate"; }
ok "stats --json parses and grows between two calls; --watch prints rates"

in_ns "$NS" curl -sS --max-time 5 -o "$OUT/metrics.txt" -D "$OUT/metrics.head" "http://$METRICS/metrics" ||
    die "curl of the metrics endpoint"
grep -qi '^content-type: text/plain; version=0.0.4' "$OUT/metrics.head" || die "metrics content type"
if command -v promtool >/dev/null; then
    promtool check metrics <"$OUT/metrics.txt" || die "promtool rejects the metrics"
    ok "promtool check metrics accepts the exposition"
fi
python3 - "$OUT/metrics.txt" <<'PY' || die "metrics do not parse"
import re, sys
types, samples = {}, {}
name_re = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$')
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        assert name_re.match(name) and kind in ("counter", "gauge"), line
        assert name not in types, "typed twice: " + name
        if kind == "counter":
            assert name.endswith("_total"), name
        types[name] = kind
    elif line.startswith("# HELP "):
        continue
    else:
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"]*"\})? ([0-9.e+-]+)$', line)
        assert m, "bad sample line: " + line
        assert m.group(1) in types, "sample before its TYPE: " + line
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
assert samples["ustack_frames_in_total"] > 0
assert samples['ustack_tcp_connections{state="ESTAB"}'] >= 2
assert 'ustack_drops_total{reason="tcp_bad_checksum"}' in samples
assert "ustack_memory_used" in samples and types["ustack_memory_used"] == "gauge"
print(len(samples), "samples")
PY
ok "curl of --metrics: text format, ustack_*_total counters, per-state connection gauges"

wait "${uploads[@]}" || die "an upload failed"
sleep 1
stats_json >"$OUT/stats-final.json"
stop_pid "$USTACK"
[[ ! -e $CTL ]] || die "control socket left behind at exit"
grep -q '^ustack: stopped' "$OUT/ustack.log" || die "no exit summary"
python3 - "$OUT/stats-final.json" "$OUT/ustack.log" <<'PY' || die "stats and exit summary disagree"
import json, re, sys
d = json.load(open(sys.argv[1]))["counters"]
log = open(sys.argv[2]).read().split("ustack: stopped", 1)[1]
m = re.search(r"tcp: +(\d+) segments in, (\d+) out, (\d+) resets sent, (\d+) active / (\d+) passive opens", log)
assert m, "no tcp line in the exit summary"
assert int(m.group(5)) == d["tcp_passive_opens"], (m.group(5), d["tcp_passive_opens"])
assert int(m.group(4)) == d["tcp_active_opens"]
assert int(m.group(1)) >= d["tcp_segments_in"]
m = re.search(r"frames in: +(\d+)", log)
assert int(m.group(1)) >= d["frames_in"]
PY
ok "exit summary matches stats (opens; totals no smaller); control socket removed at exit"

# A serve killed with SIGKILL during a transfer leaves a capture tshark
# reads to its end without error (records are written whole, flushed at
# least once a second).
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/killed.log" \
    --discard 9 --pcap "$OUT/killed.pcap"
in_ns "$NS" timeout 20 python3 -c '
import socket, time
s = socket.create_connection(("10.0.0.2", 9))
end = time.time() + 10
while time.time() < end:
    s.sendall(b"y" * 65536)
    time.sleep(0.005)
' 2>/dev/null &
UPLOAD=$!
cleanup_push "kill $UPLOAD 2>/dev/null"
wait_until 10 bash -c "[[ \$(stat -c %s '$OUT/killed.pcap') -gt 1000000 ]]" || die "the capture does not grow"
sleep 1.5
kill -KILL "$USTACK"
wait "$USTACK" 2>/dev/null || true
kill "$UPLOAD" 2>/dev/null || true
tshark -r "$OUT/killed.pcap" >"$OUT/killed.txt" 2>"$OUT/killed.err" ||
    { cat "$OUT/killed.err" >&2; die "tshark fails on the capture of a SIGKILLed serve"; }
! grep -v 'Running as user' "$OUT/killed.err" | grep -q . ||
    { cat "$OUT/killed.err" >&2; die "tshark complains about the capture"; }
frames=$(wc -l <"$OUT/killed.txt")
((frames > 100)) || die "only $frames frames in the capture of the killed serve"
check_pcap "$OUT/killed.pcap"
ok "SIGKILLed serve: tshark reads its capture cleanly ($frames frames)"

# --pcap - streams the capture to standard output: tshark shows frames
# while serve runs; serve's messages go to standard error.
mkfifo "$OUT/live.fifo"
tshark -l -r - <"$OUT/live.fifo" >"$OUT/live.txt" 2>"$OUT/live.err" &
TSHARK=$!
cleanup_push "kill $TSHARK 2>/dev/null"
ip netns exec "$NS" "$USTACK_BIN" serve --tap tap0 --addr 10.0.0.2/24 --host-addr 10.0.0.1/24 \
    --pcap - >"$OUT/live.fifo" 2>"$OUT/live.log" &
LIVE=$!
cleanup_push "stop_pid $LIVE"
wait_until 10 in_ns "$NS" ping -c 1 -W 1 10.0.0.2 || { cat "$OUT/live.log" >&2; die "live serve did not come up"; }
in_ns "$NS" ping -c 3 -i 0.2 10.0.0.2 >/dev/null
wait_until 5 grep -q 'ICMP.*Echo (ping) reply' "$OUT/live.txt" ||
    { cat "$OUT/live.txt" "$OUT/live.err" >&2; die "no frames seen live through --pcap -"; }
kill -0 "$LIVE" || die "live serve is gone"
stop_pid "$LIVE"
wait "$TSHARK" || { cat "$OUT/live.err" >&2; die "tshark failed on the live stream"; }
grep -q '^ustack: serving' "$OUT/live.log" || die "serve's messages did not go to standard error"
ok "--pcap - | tshark -r -: frames shown while serve runs"

# --pcap FILE.pcapng: pcapng with nanosecond timestamps and the
# direction of every frame.
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/ng.log" --echo 7 --pcap "$OUT/cap.pcapng"
in_ns "$NS" ping -c 3 -i 0.2 10.0.0.2 >/dev/null
echo hello | in_ns "$NS" timeout 5 nc -q 1 10.0.0.2 7 >/dev/null || true
stop_pid "$USTACK"
[[ $(tshark -r "$OUT/cap.pcapng" -T fields -e frame.encap_type 2>/dev/null | head -1) == 1 ]] ||
    die "the .pcapng is not Ethernet"
[[ $(capinfos -t "$OUT/cap.pcapng" 2>/dev/null | sed -n 's/^File type: *//p') == *pcapng* ]] ||
    die "the .pcapng file is not pcapng"
dirs=$(tshark -r "$OUT/cap.pcapng" -T fields -e frame.packet_flags_direction 2>/dev/null)
total=$(wc -l <<<"$dirs")
inbound=$(grep -c '^0x0*1$' <<<"$dirs" || true)
outbound=$(grep -c '^0x0*2$' <<<"$dirs" || true)
((total > 6 && inbound + outbound == total && inbound > 0 && outbound > 0)) ||
    die "directions in the pcapng: $inbound in, $outbound out of $total frames"
check_pcap "$OUT/cap.pcapng"
ok "--pcap FILE.pcapng: $total frames, $inbound inbound and $outbound outbound, all with a direction"

# Fault injection marks what it did, in both directions: a frame dropped
# on the way out or in is recorded with a comment, so is a duplicate.
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/faults.log" --echo 7 \
    --loss 0.3 --dup 0.3 --seed 7 --pcap "$OUT/faults.pcapng"
in_ns "$NS" ping -c 20 -i 0.05 -W 1 10.0.0.2 >/dev/null || true
stop_pid "$USTACK"
comments=$(tshark -r "$OUT/faults.pcapng" -Y frame.comment -T fields -e frame.comment 2>/dev/null)
dropped=$(grep -c 'fault injection: dropped' <<<"$comments" || true)
duplicates=$(grep -c 'fault injection: duplicate' <<<"$comments" || true)
((dropped > 0 && duplicates > 0)) || die "fault comments: $dropped dropped, $duplicates duplicates"
# Received frames too (pcapng direction 1 = inbound).
inbound=$(tshark -r "$OUT/faults.pcapng" -Y 'frame.comment contains "never delivered" && frame.packet_flags_direction == 1' 2>/dev/null | wc -l)
((inbound > 0)) || die "no inbound frame marked as dropped"
ok "pcapng fault comments visible in tshark: $dropped dropped ($inbound of them received), $duplicates duplicates"

# Bad arguments: one line, exit 2; no control socket: one line, exit 1.
set +e
err=$("$USTACK_BIN" ss 2>&1); rc=$?
[[ $rc == 2 && $(wc -l <<<"$err") == 1 ]] || die "ss without --control: rc $rc: $err"
err=$("$USTACK_BIN" stats --control "$CTL" --watch 0 2>&1); rc=$?
[[ $rc == 2 && $(wc -l <<<"$err") == 1 ]] || die "stats --watch 0: rc $rc: $err"
err=$("$USTACK_BIN" stats --control "$CTL" 2>&1); rc=$?
[[ $rc == 1 && $(wc -l <<<"$err") == 1 && $err == *"control socket"* ]] ||
    die "stats on a missing socket: rc $rc: $err"
err=$("$USTACK_BIN" ping --tap t9 --addr 10.9.0.2/24 --pcap - 10.9.0.1 2>&1); rc=$?
[[ $rc == 2 && $(wc -l <<<"$err") == 1 ]] || die "ping --pcap -: rc $rc: $err"
set -e
ok "bad arguments: one line, exit 2; no stack behind --control: one line, exit 1"
