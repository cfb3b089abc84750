#!/usr/bin/env bash
# Hostile peers against `ustack serve --http`, with real tools, from the
# kernel side of the TAP device:
#   1. an hping3 SYN flood from random sources, during which sequential curl
#      downloads of a 1 MiB file all succeed (SYN cookies);
#   2. a flood of IPv4 fragments at random offsets from random sources,
#      during which ping and curl still work (bounded reassembly);
#   3. 200 clients (in a second namespace, routed through the first) that
#      ask for a large file with a tiny receive buffer, never read, then
#      vanish: the stack's connections and memory return to idle within
#      the configured timeouts (user timeout, orphan retries);
#   4. 2,000 connections that each download 1 MiB and close (ab): RSS
#      comes back near idle (TIME-WAIT records carry no buffers).
# Each part prints what the defences counted (SIGUSR1 status reports).
source "$(dirname "$0")/../lib.sh"
ensure_tools hping3:hping3 ab:apache2-utils

OUT=$(test_out_dir attacks)
ROOT=$OUT/root
mkdir -p "$ROOT"
head -c $((1 << 20)) /dev/urandom >"$ROOT/1m.bin"
head -c $((256 << 20)) /dev/zero >"$ROOT/big.bin"
want=$(sha256sum "$ROOT/1m.bin" | cut -d' ' -f1)

netns_new NS atk
netns_new CL atkc
# The clients' namespace hangs off the first one through a veth; the first
# routes between it and the TAP (ustack's gateway is the kernel side).
ip link add atkr$$ type veth peer name atkc$$
cleanup_push "ip link del atkr$$"
ip link set atkr$$ netns "$NS"
ip link set atkc$$ netns "$CL"
in_ns "$NS" ip addr add 10.1.0.1/24 dev atkr$$
in_ns "$NS" ip link set atkr$$ up
in_ns "$CL" ip addr add 10.1.0.2/24 dev atkc$$
in_ns "$CL" ip link set atkc$$ up
in_ns "$CL" ip route add default via 10.1.0.1
in_ns "$NS" sysctl -qw net.ipv4.ip_forward=1

export RUST_LOG=warn
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/ustack.log" \
    --gateway 10.0.0.1 --http 80 --http-root "$ROOT" \
    --user-timeout 10 --orphan-retries 4
in_ns "$NS" ip route add 10.1.0.0/24 dev atkr$$ 2>/dev/null || true

# status: asks the running ustack for a status report (SIGUSR1) and prints
# it once complete.
status() {
    local before
    before=$(grep -c 'ustack: end of status' "$OUT/ustack.log" || true)
    kill -USR1 "$USTACK"
    wait_until 5 bash -c "(( \$(grep -c 'ustack: end of status' '$OUT/ustack.log') > $before ))" ||
        die "no status report"
    awk -v n="$before" '/^ustack: status/{c++} c>n' "$OUT/ustack.log"
}
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$USTACK/status"; }
mem_used() { status | sed -n 's/^memory: *\([0-9]*\) bytes.*/\1/p'; }
download() {
    in_ns "$1" curl -sS --fail --max-time "${2:-30}" -o "$OUT/got" http://10.0.0.2/1m.bin &&
        [[ $(sha256sum "$OUT/got" | cut -d' ' -f1) == "$want" ]]
}

download "$NS" || die "baseline download"
idle_rss=$(rss_kib)
idle_mem=$(mem_used)
ok "baseline: 1 MiB byte-exact; RSS $((idle_rss >> 10)) MiB, stack memory $idle_mem bytes"

# --- 1. SYN flood ------------------------------------------------------------
bg_start HPING "$OUT/hping3.log" "$NS" hping3 -S -p 80 --flood --rand-source -q 10.0.0.2
sleep 2
start=$SECONDS
for i in $(seq 1 20); do
    download "$NS" 60 || die "download $i failed during the SYN flood"
done
took=$((SECONDS - start))
report=$(status)
stop_pid "$HPING"
cookies=$(sed -n 's/^defenses: *\([0-9]*\) SYN cookies sent.*/\1/p' <<<"$report")
echo "$report" | grep -E '^(tcp connections|defenses|memory)' >&2
((cookies > 1000)) || die "the flood did not make the listener use SYN cookies ($cookies)"
ok "SYN flood (hping3 --flood --rand-source): 20 of 20 downloads byte-exact in ${took}s; $cookies SYN cookies sent"
sleep 1
download "$NS" || die "download after the SYN flood"
ok "after the flood: download at once"

# --- 2. fragment flood -------------------------------------------------------
cat >"$OUT/fragflood.py" <<'EOF'
import random, socket, struct, sys, time
dst, seconds = sys.argv[1], float(sys.argv[2])
rnd = random.Random(1)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
payload = bytes(504)
packets = []
for _ in range(8192):
    while True:
        a = rnd.randrange(1 << 32)
        if 11 <= a >> 24 < 224 and a >> 24 != 127:
            break
    off = rnd.randrange(0, (65535 - 20 - len(payload)) // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), rnd.randrange(1, 65536),
                      (1 << 13) | off, 64, 17, 0, a.to_bytes(4, "big"), socket.inet_aton(dst))
    packets.append(hdr + payload)
n, end = 0, time.time() + seconds
while time.time() < end:
    for p in packets:
        try:
            s.sendto(p, (dst, 0))
        except OSError:
            pass
    n += len(packets)
print(n)
EOF
bg_start FRAG "$OUT/fragflood.log" "$NS" python3 "$OUT/fragflood.py" 10.0.0.2 20
sleep 2
in_ns "$NS" ping -c 5 -i 0.2 -W 2 10.0.0.2 >"$OUT/ping.txt" || die "ping failed during the fragment flood"
download "$NS" || die "download failed during the fragment flood"
report=$(status)
wait "$FRAG" 2>/dev/null || true
frags=$(sed -n 's/^fragments: *\([0-9]*\) received.*/\1/p' <<<"$report")
echo "$report" | grep -E '^(fragments|memory)|reassembly' >&2
((frags > 10000)) || die "few fragments arrived ($frags)"
reasm=$(sed -n 's/^ *[0-9]* tcp, [0-9]* time-wait, \([0-9]*\) reassembly.*/\1/p' <<<"$report")
((reasm <= 4 << 20)) || die "reassembly holds $reasm bytes, over its 4 MiB cap"
ok "fragment flood ($frags fragments at random offsets): ping 5/5, download byte-exact, reassembly held $reasm bytes"

# --- 3. readers that never read, then vanish -----------------------------------
cat >"$OUT/slowreaders.py" <<'EOF'
import socket, sys, time
n, host = int(sys.argv[1]), sys.argv[2]
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect((host, 80))
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: ustack\r\n\r\n")
    socks.append(s)
print("connected", len(socks), flush=True)
time.sleep(3600)
EOF
bg_start SLOW "$OUT/slowreaders.log" "$CL" python3 "$OUT/slowreaders.py" 200 10.0.0.2
wait_until 30 grep -q 'connected 200' "$OUT/slowreaders.log" || die "the 200 clients did not connect"
sleep 3
held=$(status | sed -n 's/^tcp connections: .* \([0-9]*\) ESTABLISHED.*/\1/p')
busy_mem=$(mem_used)
((held >= 200)) || die "only ${held:-0} connections established"
# They vanish: the router's side of their link goes down (nothing they send
# arrives, not even a reset), then they are killed.
in_ns "$NS" ip link set atkr$$ down
stop_pid "$SLOW"
start=$SECONDS
wait_until 90 bash -c "kill -USR1 $USTACK; sleep 1; tac '$OUT/ustack.log' | grep -m1 '^tcp connections:' | grep -q '^tcp connections: 0\$'" ||
    { status >&2; die "connections to vanished clients were not given up"; }
gone=$((SECONDS - start))
report=$(status)
mem=$(sed -n 's/^memory: *\([0-9]*\) bytes.*/\1/p' <<<"$report")
echo "$report" | grep -E '^(tcp connections|defenses|memory)|orphans|persist' >&2
((mem < idle_mem + (1 << 20))) || die "stack memory $mem bytes, idle was $idle_mem"
ok "200 non-reading clients vanished: $held connections and $((busy_mem >> 20)) MiB given up in ${gone}s; memory back to $mem bytes"
in_ns "$NS" ip link set atkr$$ up

# --- 4. 2,000 downloads, then idle -------------------------------------------
before_rss=$(rss_kib)
in_ns "$NS" ab -q -n 2000 -c 16 http://10.0.0.2/1m.bin >"$OUT/ab.txt" 2>&1 || { cat "$OUT/ab.txt" >&2; die "ab failed"; }
grep -q '^Complete requests: *2000' "$OUT/ab.txt" && grep -q '^Failed requests: *0' "$OUT/ab.txt" ||
    { cat "$OUT/ab.txt" >&2; die "ab: not 2000 complete downloads"; }
rate=$(sed -n 's/^Transfer rate: *\([0-9.]*\).*/\1/p' "$OUT/ab.txt")
sleep 2
report=$(status)
after_rss=$(rss_kib)
echo "$report" | grep -E '^(tcp connections|memory)|TIME-WAIT' >&2
((after_rss < idle_rss + 48 * 1024)) ||
    die "RSS $((after_rss >> 10)) MiB after 2,000 closed downloads (idle $((idle_rss >> 10)) MiB)"
ok "2,000 x 1 MiB (ab -c 16, ${rate} KB/s): RSS $((after_rss >> 10)) MiB after, $((idle_rss >> 10)) MiB idle (before: $((before_rss >> 10)) MiB)"

stop_pid "$USTACK"
grep -q 'ustack: stopped' "$OUT/ustack.log" || die "no clean stop"
ok "clean stop"
