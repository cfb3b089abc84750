#!/usr/bin/env bash
# The socket-API programs against Linux: `ustack get` from python's
# http.server (byte-exact; clear failures), `ustack ping` of Linux, and
# `ustack nc` with Linux's OpenBSD nc both ways round (TCP, no RST), plus
# UDP both ways.
source "$(dirname "$0")/../lib.sh"
ensure_openbsd_nc

OUT=$(test_out_dir apps)
netns_new NS apps
# Every ustack program below opens tap0 (tun0 with USTACK_MEDIUM=tun) as
# 10.0.0.2, Linux being 10.0.0.1.
DEVICE=(--tap tap0)
[[ $USTACK_MEDIUM == tun ]] && DEVICE=(--tun tun0)
UST=("${DEVICE[@]}" --addr 10.0.0.2/24 --host-addr 10.0.0.1/24)
ust() { in_ns "$NS" timeout 120 "$USTACK_BIN" "$@"; }
# expect_fail STATUS PATTERN CMD...: CMD exits STATUS with one line
# on stderr that matches PATTERN.
expect_fail() {
    local want=$1 pattern=$2 status=0 err
    shift 2
    err=$("$@" 2>&1 >/dev/null) || status=$?
    [[ $status -eq $want ]] || die "$* exited $status, expected $want ($err)"
    [[ $(wc -l <<<"$err") -eq 1 ]] || die "$* printed more than one line: $err"
    grep -qi -- "$pattern" <<<"$err" || die "$*: '$err' does not mention '$pattern'"
    ok "exit $want: $err"
}

# --- ustack get -------------------------------------------------------------
mkdir -p "$OUT/www"
head -c $((20 << 20)) /dev/urandom >"$OUT/www/file.bin"
bg_start PY "$OUT/python-http.log" "$NS" python3 -m http.server 8000 --bind 0.0.0.0 \
    --directory "$OUT/www"
wait_until 10 in_ns "$NS" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8000' || die "python http.server did not start"

ust get "${UST[@]}" http://10.0.0.1:8000/file.bin -o "$OUT/file.got" 2>"$OUT/get.err" ||
    { cat "$OUT/get.err" >&2; die "ustack get failed"; }
cmp -s "$OUT/file.got" "$OUT/www/file.bin" || die "ustack get -o: 20 MiB differ"
ok "ustack get -o: 20 MiB from python http.server byte-exact ($(cat "$OUT/get.err"))"
ust get -q "${UST[@]}" http://10.0.0.1:8000/file.bin >"$OUT/file.stdout"
cmp -s "$OUT/file.stdout" "$OUT/www/file.bin" || die "ustack get to stdout differs"
rm -f "$OUT/file.got" "$OUT/file.stdout"
ok "ustack get to standard output: byte-exact"

expect_fail 1 'cannot connect to 10.0.0.1:8001: connection refused' \
    ust get "${UST[@]}" http://10.0.0.1:8001/file.bin -o "$OUT/refused.got"
[[ ! -e $OUT/refused.got ]] || die "a failed download left its output file"
expect_fail 1 '404' ust get "${UST[@]}" http://10.0.0.1:8000/missing.bin -o "$OUT/missing.got"
expect_fail 1 'timed out' ust get "${UST[@]}" --connect-timeout 1 http://10.0.0.77/x -o /dev/null
expect_fail 1 'cannot resolve' ust get "${UST[@]}" http://no-such-host.invalid/x
expect_fail 2 'scheme' ust get "${UST[@]}" ftp://10.0.0.1/x
stop_pid "$PY"

# --- ustack ping ------------------------------------------------------------
result=$(ust ping "${UST[@]}" -c 3 -i 0.2 -W 2 10.0.0.1)
grep -q '^64 bytes from 10.0.0.1: icmp_seq=3 ttl=64 time=[0-9.]* ms$' <<<"$result" &&
    grep -q '^3 packets transmitted, 3 received, 0% packet loss, time [0-9]*ms$' <<<"$result" &&
    grep -q '^rtt min/avg/max/mdev = [0-9.]*/[0-9.]*/[0-9.]*/[0-9.]* ms$' <<<"$result" ||
    { echo "$result" >&2; die "ustack ping"; }
ok "ustack ping -c 3: 3/3 replies, Linux ping's format"
result=$(ust ping "${UST[@]}" -c 2 -i 0.2 -s 4000 10.0.0.1)
grep -q '^4008 bytes from 10.0.0.1: icmp_seq=2' <<<"$result" ||
    { echo "$result" >&2; die "ustack ping -s 4000"; }
ok "ustack ping -s 4000: fragmented both ways, replies"
status=0
result=$(ust ping "${UST[@]}" -c 2 -i 0.2 -W 1 10.0.0.77) || status=$?
((status == 1)) && grep -q '2 packets transmitted, 0 received, 100% packet loss' <<<"$result" ||
    { echo "$result" >&2; die "ping of nobody exited $status"; }
ok "ustack ping of an absent host: 100% loss, exit 1"
# Its own loopback: answered locally, never on the TAP device; captured
# only with --pcap-loopback.
for lo in 0 1; do
    flags=(--pcap "$OUT/lo$lo.pcap")
    ((lo)) && flags+=(--pcap-loopback)
    result=$(ust ping "${UST[@]}" "${flags[@]}" -c 2 -i 0.1 -W 2 127.0.0.1)
    grep -q '^2 packets transmitted, 2 received' <<<"$result" ||
        { echo "$result" >&2; die "ustack ping 127.0.0.1"; }
    seen=$(count_frames "$OUT/lo$lo.pcap" 'ip.addr == 127.0.0.1')
    ((seen == lo * 4)) || die "loopback capture $lo holds $seen frames to or from 127.0.0.1"
done
check_pcap "$OUT/lo1.pcap" strict
ok "ustack ping 127.0.0.1: answered locally; in the capture only with --pcap-loopback"

# --- ustack nc (TCP) --------------------------------------------------------
head -c 3000000 /dev/urandom >"$OUT/from-ustack"
head -c 2000000 /dev/urandom >"$OUT/from-linux"
listening() { in_ns "$NS" ss -Hltn "sport = :$1" | grep -q .; }

# Linux listens, ustack connects.
bg_start LNC "$OUT/linux-nc.log" "$NS" bash -c \
    "exec nc -N -l 5000 <'$OUT/from-linux' >'$OUT/linux-got'"
wait_until 5 listening 5000 || die "Linux nc did not listen"
ust nc "${UST[@]}" 10.0.0.1 5000 <"$OUT/from-ustack" >"$OUT/ustack-got" ||
    die "ustack nc (connecting) failed"
wait "$LNC" || die "Linux nc -l exited with an error"
cmp -s "$OUT/linux-got" "$OUT/from-ustack" || die "Linux nc received different bytes"
cmp -s "$OUT/ustack-got" "$OUT/from-linux" || die "ustack nc received different bytes"
ok "ustack nc -> Linux nc -l: 3 MB and 2 MB exchanged byte-exact, both exited 0"

# ustack listens, Linux connects.
bg_start UNC "$OUT/ustack-nc.log" "$NS" bash -c \
    "exec '$USTACK_BIN' nc ${UST[*]} --pcap '$OUT/nc.pcap' -v -l 5001 \
     <'$OUT/from-ustack' >'$OUT/ustack-got'"
wait_until 10 grep -q 'listening on' "$OUT/ustack-nc.log" ||
    { cat "$OUT/ustack-nc.log" >&2; die "ustack nc -l did not start"; }
in_ns "$NS" timeout 60 nc -N 10.0.0.2 5001 <"$OUT/from-linux" >"$OUT/linux-got" ||
    die "Linux nc (connecting) failed"
wait "$UNC" || { cat "$OUT/ustack-nc.log" >&2; die "ustack nc -l exited with an error"; }
cmp -s "$OUT/linux-got" "$OUT/from-ustack" || die "Linux nc received different bytes"
cmp -s "$OUT/ustack-got" "$OUT/from-linux" || die "ustack nc -l received different bytes"
resets=$(count_frames "$OUT/nc.pcap" 'tcp.flags.reset == 1')
fins=$(count_frames "$OUT/nc.pcap" 'tcp.flags.fin == 1')
((resets == 0 && fins >= 2)) || die "nc close: $fins FINs and $resets RSTs in the capture"
check_pcap "$OUT/nc.pcap"
ok "Linux nc -> ustack nc -l: byte-exact both ways; closed with 2 FINs, no RST"

# --- ustack nc (UDP) --------------------------------------------------------
# A Linux UDP service that answers each datagram in upper case.
bg_start UPPER "$OUT/udp-upper.log" "$NS" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5002))
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data.upper(), peer)'
sleep 0.5
reply=$(printf 'hello over udp\n' | ust nc "${UST[@]}" -u -q 1 10.0.0.1 5002)
[[ $reply == "HELLO OVER UDP" ]] || die "ustack nc -u: got '$reply'"
ok "ustack nc -u: datagram out, answer back"

# stdin from a file, not a pipe: with `exec` the PID stop_pid signals is
# ustack nc itself (a pipeline would leave it a child of a bash that
# ignores SIGINT, and orphaned when that bash is killed).
printf 'reply from ustack\n' >"$OUT/udp-reply"
bg_start UUDP "$OUT/ustack-udp.log" "$NS" bash -c \
    "exec '$USTACK_BIN' nc ${UST[*]} -v -u -l 5003 <'$OUT/udp-reply' >'$OUT/udp-got'"
wait_until 10 grep -q 'listening on UDP' "$OUT/ustack-udp.log" || die "ustack nc -u -l did not start"
reply=$(in_ns "$NS" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"hello from linux\n", ("10.0.0.2", 5003))
print(s.recvfrom(100)[0].decode(), end="")')
[[ $reply == "reply from ustack" ]] || die "ustack nc -u -l replied '$reply'"
stop_pid "$UUDP"
[[ $(cat "$OUT/udp-got") == "hello from linux" ]] || die "ustack nc -u -l printed '$(cat "$OUT/udp-got")'"
ok "ustack nc -u -l: datagram in, reply to its sender"
