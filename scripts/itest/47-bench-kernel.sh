#!/usr/bin/env bash
# The pieces `scripts/bench` builds its kernel comparison from: kernel-serve
# in a namespace behind a veth serves discard, chargen (the pattern tcp-load
# verifies) and echo; `tcp-load connect --parallel` counts connections to it
# and to ustack serve --echo with none failing, and counts (does not die
# on) refused ones; `scripts/bench --plot CSV` draws a PNG per section.
source "$(dirname "$0")/../lib.sh"

OUT=$(test_out_dir bench-kernel)
BIN=$USTACK_ROOT/target/release
netns_new NS bkclient
netns_new KNS bkserver
ip link add bic$$ type veth peer name bis$$
cleanup_push "ip link del bic$$"
ip link set bis$$ netns "$KNS"
ip link set bic$$ netns "$NS"
in_ns "$KNS" ip addr add 10.3.0.2/24 dev bis$$
in_ns "$KNS" ip link set bis$$ up
in_ns "$NS" ip addr add 10.3.0.1/24 dev bic$$
in_ns "$NS" ip link set bic$$ up
bg_start KSERVE "$OUT/kernel-serve.log" "$KNS" "$BIN/kernel-serve" --addr 10.3.0.2 --workers 8
wait_until 10 grep -q listening "$OUT/kernel-serve.log" ||
    { cat "$OUT/kernel-serve.log" >&2; die "kernel-serve did not start"; }
ok "kernel-serve listens: $(cat "$OUT/kernel-serve.log")"

r=$(in_ns "$NS" "$BIN/tcp-load" chargen --target 10.3.0.2:19 --bytes $((64 << 20)) --check 1)
grep -q 'pattern verified' <<<"$r" || die "chargen: $r"
r=$(in_ns "$NS" "$BIN/tcp-load" discard --target 10.3.0.2:9 --bytes $((64 << 20)))
grep -q '^discard: 67108864 bytes' <<<"$r" || die "discard: $r"
r=$(in_ns "$NS" "$BIN/tcp-load" pingpong --target 10.3.0.2:7 --seconds 0.5)
[[ $(awk '{print $3}' <<<"$r") -gt 0 ]] || die "ping-pong: $r"
ok "kernel-serve: 64 MiB of chargen pattern verified, 64 MiB discarded, echo ping-pong"

# completed_failed LINE: "COMPLETED FAILED" from a tcp-load connect line.
completed_failed() { sed -n 's/.* in parallel: \([0-9]*\) in .* (\([0-9]*\) failed.*/\1 \2/p' <<<"$1"; }
r=$(in_ns "$NS" "$BIN/tcp-load" connect --target 10.3.0.2:7 --seconds 1 --parallel 8)
read -r done failed <<<"$(completed_failed "$r")"
((done > 0 && failed == 0)) || die "connect to kernel-serve: $r"
ok "tcp-load connect --parallel 8 to kernel-serve: $done connections, none failed"

start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/ustack.log" --echo 7
r=$(in_ns "$NS" "$BIN/tcp-load" connect --target 10.0.0.2:7 --seconds 1 --parallel 8)
read -r done failed <<<"$(completed_failed "$r")"
((done > 0 && failed == 0)) || die "connect to ustack: $r"
ok "tcp-load connect --parallel 8 to ustack serve --echo: $done connections, none failed"
stop_pid "$USTACK"

# Nothing listens on port 1: every attempt is refused and counted.
r=$(in_ns "$NS" "$BIN/tcp-load" connect --target 10.3.0.2:1 --seconds 0.3 --parallel 2)
read -r done failed <<<"$(completed_failed "$r")"
((done == 0 && failed > 0)) && grep -q 'refused' <<<"$r" || die "connect to a closed port: $r"
ok "tcp-load connect to a closed port: $failed refusals counted, no connection"

# --plot: a CSV in bench's format, one PNG per section.
cat >"$OUT/bench.csv" <<'CSV'
section,name,value,unit
tcp,ustack into server,11.3,Gbit/s
tcp,kernel into server,18.1,Gbit/s
tcp,smoltcp into server,5.4,Gbit/s
tcp,ustack ping-pong,14630,req/s
tcp,kernel ping-pong,78070,req/s
tcp,ustack/kernel into server,0.62,x
cps,ustack connections/s,20497,conn/s
cps,kernel connections/s,22874,conn/s
cps,oddity,not-a-number,x
CSV
pngs=$("$USTACK_ROOT/scripts/bench" --plot "$OUT/bench.csv" "$OUT/plots")
[[ $(wc -l <<<"$pngs") -eq 2 ]] || die "--plot wrote: $pngs"
for png in $pngs; do
    [[ $(head -c 8 "$png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || die "$png is not a PNG"
done
ok "scripts/bench --plot: $(basename -a $pngs | paste -sd' ')"
