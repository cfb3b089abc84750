#!/usr/bin/env bash
# ustack on TUN devices (an IP link: no Ethernet, no ARP): Linux ping up to
# 65000 bytes both ways, `ustack get --tun` from a Linux HTTP server and
# curl from `ustack serve --tun --http`, byte-exact; raw-IP captures
# (LINKTYPE_RAW) that tshark reads cleanly.
source "$(dirname "$0")/../lib.sh"

OUT=$(test_out_dir tun)
ROOT=$OUT/root
mkdir -p "$ROOT"
head -c $((100 << 20)) /dev/urandom >"$ROOT/big.bin"
head -c $((20 << 20)) /dev/urandom >"$ROOT/blob.bin"
sha() { sha256sum "$1" | cut -d' ' -f1; }
netns_new NS tun

# start_tun VAR TUN ADDR HOSTADDR LOG ARGS...: `ustack serve --tun`, up when
# it answers ping.
start_tun() {
    local var=$1 tun=$2 addr=$3 host=$4 logfile=$5
    shift 5
    bg_start "$var" "$logfile" "$NS" "$USTACK_BIN" serve --tun "$tun" \
        --addr "$addr" --host-addr "$host" "$@"
    wait_until 10 ip netns exec "$NS" ping -c 1 -W 1 "${addr%/*}" ||
        { cat "$logfile" >&2; die "ustack on $tun did not come up"; }
}

start_tun USTACK tun0 10.0.0.2/24 10.0.0.1/24 "$OUT/serve.log" \
    --http 80 --http-root "$ROOT" --pcap "$OUT/tun.pcap"
link=$(in_ns "$NS" ip -d link show tun0)
grep -q 'link/none' <<<"$link" && grep -q 'tun type tun' <<<"$link" ||
    { echo "$link" >&2; die "tun0 is not a TUN device"; }
ok "tun0 is a TUN device (link/none), ustack answers on it"

for size in 0 56 1472 8000 65000; do
    result=$(in_ns "$NS" ping -c 5 -i 0.1 -W 2 -s "$size" 10.0.0.2)
    grep -q ' 5 received, 0% packet loss' <<<"$result" ||
        { echo "$result" >&2; die "ping -s $size lost replies"; }
done
ok "Linux ping -s 0, 56, 1472, 8000, 65000 to ustack: 5/5 replies each"

status=$(in_ns "$NS" curl -sS --max-time 20 -o "$OUT/blob.got" -w '%{http_code}' \
    http://10.0.0.2/blob.bin)
[[ $status == 200 && $(sha "$OUT/blob.got") == $(sha "$ROOT/blob.bin") ]] ||
    die "curl of 20 MiB over TUN (captured): $status, or the bytes differ"
ok "curl downloads 20 MiB byte-exact (captured)"

stop_pid "$USTACK"
grep -q 'frames in:' "$OUT/serve.log" || die "no counter summary on SIGINT"
check_pcap "$OUT/tun.pcap"
not_raw=$(tshark -r "$OUT/tun.pcap" -T fields -e frame.protocols 2>/dev/null |
    grep -Ecv '^raw:(ip|ipv6):' || true)
((not_raw == 0)) || die "the capture is not raw IP: $not_raw frames are neither raw IPv4 nor IPv6"
v6=$(count_frames "$OUT/tun.pcap" 'ipv6')
# The kernel's own IPv6 traffic (router solicitations) is counted and dropped.
if ((v6 > 0)); then
    grep -q 'packet of another IP version' "$OUT/serve.log" ||
        die "$v6 IPv6 packets in the capture, no drop counted"
fi
! tshark -r "$OUT/tun.pcap" -Y 'eth || arp' 2>/dev/null | grep -q . ||
    die "Ethernet or ARP in a TUN capture"
replies=$(count_frames "$OUT/tun.pcap" 'icmp.type == 0')
frags=$(count_frames "$OUT/tun.pcap" 'ip.flags.mf == 1 && ip.src == 10.0.0.2')
http=$(count_frames "$OUT/tun.pcap" 'http.response.code == 200')
((replies >= 25 && frags > 0 && http == 1)) ||
    die "capture: $replies echo replies, $frags fragments from ustack, $http HTTP 200"
big=$(tshark -r "$OUT/tun.pcap" -T fields -e ip.len -Y 'ip.src == 10.0.0.2' 2>/dev/null | sort -n | tail -1)
((big <= 1500)) || die "ustack's packets in the capture exceed the MTU ($big bytes)"
ok "capture: LINKTYPE_RAW, clean, no Ethernet or ARP ($v6 IPv6 packets counted, dropped); $replies echo replies, fragments, wire-sized"

# Bulk, without a capture.
start_tun USTACK tun0 10.0.0.2/24 10.0.0.1/24 "$OUT/bulk.log" --http 80 --http-root "$ROOT"
speed=$(in_ns "$NS" curl -sS --fail --max-time 120 -o "$OUT/big.got" -w '%{speed_download}' \
    http://10.0.0.2/big.bin)
[[ $(sha "$OUT/big.got") == $(sha "$ROOT/big.bin") ]] || die "100 MiB download differs"
rm -f "$OUT/big.got"
ok "curl downloads 100 MiB byte-exact from ustack serve --tun, $((${speed%.*} >> 20)) MiB/s"
stop_pid "$USTACK"

# The other direction: ustack's clients on a TUN device of their own.
bg_start HTTPD "$OUT/httpd.log" "$NS" python3 -m http.server 8000 --bind 0.0.0.0 \
    --directory "$ROOT"
wait_until 10 in_ns "$NS" python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8000))' ||
    die "python http.server did not start"
in_ns "$NS" "$USTACK_BIN" ping --tun tun1 --addr 10.0.1.2/24 --host-addr 10.0.1.1/24 \
    -c 3 -i 0.2 -s 65000 10.0.1.1 >"$OUT/ping.txt" 2>&1 ||
    { cat "$OUT/ping.txt" >&2; die "ustack ping -s 65000 over TUN"; }
grep -q '3 received' "$OUT/ping.txt" || { cat "$OUT/ping.txt" >&2; die "ustack ping lost replies"; }
ok "ustack ping --tun -s 65000 to Linux: 3/3 replies"

in_ns "$NS" "$USTACK_BIN" get --tun tun1 --addr 10.0.1.2/24 --host-addr 10.0.1.1/24 \
    --pcap "$OUT/get.pcap" -q -o "$OUT/got.bin" http://10.0.1.1:8000/blob.bin ||
    die "ustack get --tun failed"
[[ $(sha "$OUT/got.bin") == $(sha "$ROOT/blob.bin") ]] || die "ustack get --tun: bytes differ"
check_pcap "$OUT/get.pcap"
ok "ustack get --tun downloads 20 MiB byte-exact from python3 http.server; capture clean"

# Bad or busy devices: the same one-line errors and exit codes as TAP.
start_tun USTACK tun0 10.0.0.2/24 10.0.0.1/24 "$OUT/busy.log"
set +e
msg=$(in_ns "$NS" "$USTACK_BIN" serve --tun tun0 --addr 10.0.0.3/24 --echo 7 2>&1)
rc=$?
msg2=$(in_ns "$NS" "$USTACK_BIN" serve --tun a-very-long-tun-name --addr 10.0.0.3/24 --echo 7 2>&1)
rc2=$?
msg3=$(in_ns "$NS" "$USTACK_BIN" serve --tun tun9 --tap tap9 --addr 10.0.0.3/24 --echo 7 2>&1)
rc3=$?
set -e
((rc == 1)) && [[ $(wc -l <<<"$msg") == 1 ]] && grep -q "TUN device 'tun0' is busy" <<<"$msg" ||
    die "busy TUN: exit $rc: $msg"
((rc2 == 1)) && grep -q "TUN device name .* is too long" <<<"$msg2" || die "long TUN name: exit $rc2: $msg2"
((rc3 == 2)) && grep -q "cannot be used with" <<<"$msg3" || die "--tun with --tap: exit $rc3: $msg3"
ok "busy and bad TUN devices: one-line errors, exit 1; --tun with --tap: usage error, exit 2"
stop_pid "$USTACK"
rm -rf "$ROOT"
