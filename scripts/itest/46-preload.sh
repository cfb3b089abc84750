#!/usr/bin/env bash
# Unmodified programs over ustack (LD_PRELOAD=libustack_preload.so), each
# against Linux across the TAP device, byte-exact: curl and wget
# downloading from a Linux HTTP server, python3 -m http.server served to a
# Linux curl, nc both ways over TCP and UDP, ab -c 20 -n 2000 against the
# python server under the shim. A capture on every interface of the
# namespace shows that ustack's MAC sent each test's traffic (it left
# through ustack's TAP device, not through the kernel).
source "$(dirname "$0")/../lib.sh"

ensure_net_tools
ensure_openbsd_nc
ensure_tools wget:wget ab:apache2-utils

PRELOAD=$USTACK_ROOT/target/release/libustack_preload.so
[[ -f $PRELOAD ]] || die "build first: cargo build --release"
OUT=$(test_out_dir preload)
netns_new NS preload
MAC=02:00:00:00:06:02
# Each program under the shim starts its own stack on tap0 (created with
# the host address, deleted when the program exits).
SHIM=(env USTACK_TAP=tap0 USTACK_ADDR=10.0.6.2/24 USTACK_HOST_ADDR=10.0.6.1/24
    USTACK_MAC=$MAC USTACK_LOG=warn LD_PRELOAD="$PRELOAD")
PY=$(command -v python3)
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3

bg_start CAP "$OUT/tshark.log" "$NS" tshark -i any -w "$OUT/any.pcapng"
wait_until 10 test -s "$OUT/any.pcapng" || die "tshark did not start"

# ustack sent frames of this TCP/UDP port (the cooked capture's source
# link-layer address is ustack's MAC).
sent_by_ustack() {
    local n
    n=$(count_frames "$OUT/any.pcapng" "sll.src.eth == $MAC && ($1.port == $2)")
    ((n > 0)) || die "no $1 port $2 frame from ustack's MAC $MAC in the capture"
}

mkdir -p "$OUT/www"
head -c 3000000 /dev/urandom >"$OUT/www/blob"
echo small >"$OUT/www/small"
(cd "$OUT/www" && exec ip netns exec "$NS" "$PY" -m http.server 8000 --bind 0.0.0.0) \
    >"$OUT/linux-http.log" 2>&1 &
LINUX_HTTP=$!
cleanup_push "stop_pid $LINUX_HTTP"
wait_until 10 ip netns exec "$NS" curl -sf -o /dev/null http://127.0.0.1:8000/small ||
    die "Linux http.server did not start"

# 1. curl under the shim downloads from Linux.
in_ns "$NS" "${SHIM[@]}" timeout 30 curl -sS -o "$OUT/curl.out" http://10.0.6.1:8000/blob \
    2>"$OUT/curl.err" || { cat "$OUT/curl.err" >&2; die "curl over ustack failed"; }
cmp -s "$OUT/www/blob" "$OUT/curl.out" || die "curl download differs"
ok "curl over ustack: 3 MB byte-exact"

# 2. wget under the shim (select-based), the server named in /etc/hosts
# (ip netns exec mounts /etc/netns/NS/hosts over it): libc's getaddrinfo
# resolves it without a socket.
mkdir -p "/etc/netns/$NS"
cleanup_push "rm -rf '/etc/netns/$NS'"
printf '127.0.0.1 localhost\n10.0.6.1 linux-peer\n' >"/etc/netns/$NS/hosts"
in_ns "$NS" "${SHIM[@]}" timeout 30 wget -q -O "$OUT/wget.out" http://linux-peer:8000/blob \
    2>"$OUT/wget.err" || { cat "$OUT/wget.err" >&2; die "wget over ustack failed"; }
cmp -s "$OUT/www/blob" "$OUT/wget.out" || die "wget download differs"
ok "wget over ustack (server named in /etc/hosts): 3 MB byte-exact"

# 2b. curl with the stack on a TUN device (USTACK_TUN: bare IP, no MAC;
# the capture shows 10.0.9.2, an address only ustack holds).
in_ns "$NS" env USTACK_TUN=tun0 USTACK_ADDR=10.0.9.2/24 USTACK_HOST_ADDR=10.0.9.1/24 \
    LD_PRELOAD="$PRELOAD" timeout 30 curl -sS -o "$OUT/curl-tun.out" http://10.0.9.1:8000/blob \
    2>"$OUT/curl-tun.err" || { cat "$OUT/curl-tun.err" >&2; die "curl over ustack on TUN failed"; }
cmp -s "$OUT/www/blob" "$OUT/curl-tun.out" || die "curl download over TUN differs"
ok "curl over ustack on a TUN device: 3 MB byte-exact"

# 3. nc TCP, ustack -> Linux and Linux -> ustack.
in_ns "$NS" timeout 30 nc -l 9001 >"$OUT/nc1.out" &
NC=$!
wait_until 5 bash -c "ip netns exec $NS ss -ltn | grep -q :9001"
in_ns "$NS" "${SHIM[@]}" timeout 30 nc -N 10.0.6.1 9001 <"$OUT/www/blob" || die "nc client over ustack failed"
wait "$NC" || true
cmp -s "$OUT/www/blob" "$OUT/nc1.out" || die "nc to Linux: data differs"
ok "nc TCP ustack -> Linux: 3 MB byte-exact"

in_ns "$NS" "${SHIM[@]}" timeout 30 nc -l 10.0.6.2 9002 >"$OUT/nc2.out" 2>"$OUT/nc2.err" &
NC=$!
wait_until 10 ip netns exec "$NS" ping -c 1 -W 1 10.0.6.2 || die "nc listener's stack did not come up"
in_ns "$NS" timeout 30 nc -N 10.0.6.2 9002 <"$OUT/www/blob" || die "Linux nc to ustack failed"
wait "$NC" || { cat "$OUT/nc2.err" >&2; die "nc listener over ustack failed"; }
cmp -s "$OUT/www/blob" "$OUT/nc2.out" || die "nc from Linux: data differs"
ok "nc TCP Linux -> ustack: 3 MB byte-exact"

# 4. nc UDP both ways.
in_ns "$NS" timeout 10 nc -u -l 9003 >"$OUT/nc3.out" &
NC=$!
wait_until 5 bash -c "ip netns exec $NS ss -lun | grep -q :9003"
printf 'datagram from ustack\n' | in_ns "$NS" "${SHIM[@]}" timeout 5 nc -u -w 1 10.0.6.1 9003
wait_until 5 grep -q 'datagram from ustack' "$OUT/nc3.out" || die "UDP to Linux not received"
kill "$NC" 2>/dev/null || true
[[ $(cat "$OUT/nc3.out") == "datagram from ustack" ]] || die "UDP to Linux: got '$(cat "$OUT/nc3.out")'"
ok "nc UDP ustack -> Linux"
wait_until 10 bash -c "! ip netns exec $NS ip link show tap0" || die "tap0 still exists"

# The listener answers with a line of its own once it knows its peer.
printf 'reply from ustack\n' >"$OUT/nc4.in"
in_ns "$NS" "${SHIM[@]}" timeout 10 nc -u -l 10.0.6.2 9004 <"$OUT/nc4.in" >"$OUT/nc4.out" 2>"$OUT/nc4.err" &
NC=$!
wait_until 10 ip netns exec "$NS" ping -c 1 -W 1 10.0.6.2 || die "UDP listener's stack did not come up"
printf 'datagram from linux\n' | in_ns "$NS" timeout 5 nc -u -w 2 10.0.6.2 9004 >"$OUT/nc4.back"
wait_until 5 grep -q 'datagram from linux' "$OUT/nc4.out" || { cat "$OUT/nc4.err" >&2; die "UDP to ustack not received"; }
stop_pid "$NC"
[[ $(cat "$OUT/nc4.out") == "datagram from linux" ]] || die "UDP to ustack: got '$(cat "$OUT/nc4.out")'"
grep -q 'reply from ustack' "$OUT/nc4.back" || die "no UDP reply from the ustack listener"
ok "nc UDP Linux -> ustack (and the reply back)"

# The previous program's tap0 is gone before the next one creates it.
tap_free() { wait_until 10 bash -c "! ip netns exec $NS ip link show tap0" || die "tap0 still exists"; }
tap_free

# 5. What event loops call, from Python: epoll (edge-triggered) and select
# over ustack sockets beside a pipe, dup, FIONREAD, an unsupported option
# (ENOPROTOOPT and one line on stderr naming the call), IPv6 left to the
# kernel, fork (the child has no stack: ENETDOWN; the parent goes on).
in_ns "$NS" "${SHIM[@]}" timeout 60 "$PY" "$USTACK_ROOT/scripts/itest/preload_probe.py" \
    10.0.6.1 8000 /blob "$OUT/www/blob" >"$OUT/probe.out" 2>"$OUT/probe.err" ||
    { cat "$OUT/probe.out" "$OUT/probe.err" >&2; die "preload_probe.py failed"; }
grep -q '^all ok' "$OUT/probe.out" || die "preload_probe.py did not finish"
grep -q '^ustack-preload: setsockopt: .*ENOPROTOOPT' "$OUT/probe.err" ||
    die "no stderr line naming the unsupported setsockopt"
ok "Python probe: epoll (edge, level, EPOLLONESHOT), select with a pipe, dup, FIONREAD, ENOPROTOOPT (+ stderr line), IPv6 to the kernel, fork"
tap_free

# 6. python3 -m http.server under the shim, served to Linux curl and ab.
(cd "$OUT/www" && exec ip netns exec "$NS" "${SHIM[@]}" "$PY" -m http.server 8080 --bind 10.0.6.2) \
    >"$OUT/shim-http.log" 2>&1 &
SHIM_HTTP=$!
cleanup_push "stop_pid $SHIM_HTTP"
wait_until 10 ip netns exec "$NS" curl -sf -o /dev/null http://10.0.6.2:8080/small ||
    { cat "$OUT/shim-http.log" >&2; die "http.server over ustack did not answer"; }
in_ns "$NS" timeout 30 curl -sS -o "$OUT/served.out" http://10.0.6.2:8080/blob || die "Linux curl from http.server over ustack failed"
cmp -s "$OUT/www/blob" "$OUT/served.out" || die "served file differs"
ok "python3 -m http.server over ustack served 3 MB byte-exact to Linux curl"

in_ns "$NS" timeout 120 ab -q -c 20 -n 2000 http://10.0.6.2:8080/small >"$OUT/ab.txt" 2>&1 ||
    { cat "$OUT/ab.txt" >&2; die "ab failed"; }
grep -q '^Complete requests: *2000' "$OUT/ab.txt" || die "ab: not 2000 complete requests"
grep -q '^Failed requests: *0' "$OUT/ab.txt" || { cat "$OUT/ab.txt" >&2; die "ab: failed requests"; }
grep -q 'Non-2xx' "$OUT/ab.txt" && die "ab: non-2xx responses"
ok "ab -c 20 -n 2000 against http.server over ustack: all complete ($(grep 'Requests per second' "$OUT/ab.txt" | awk '{print $4}') req/s)"
stop_pid "$SHIM_HTTP"

# 7. The traffic left through ustack's TAP device.
stop_pid "$CAP"
for port in 8000 9001 9002 8080; do sent_by_ustack tcp "$port"; done
for port in 9003 9004; do sent_by_ustack udp "$port"; done
n=$(count_frames "$OUT/any.pcapng" "ip.src == 10.0.9.2 && tcp.srcport != 8000 && tcp.dstport == 8000")
((n > 0)) || die "no TCP frame from ustack's TUN address in the capture"
ok "the capture shows ustack's MAC sending every test's traffic (and its TUN address, the TUN test's)"
