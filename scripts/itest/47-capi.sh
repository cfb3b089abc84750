#!/usr/bin/env bash
# The C example on libustack (examples/c/echo.c), built here with cc
# against capi/include/ustack.h and target/release/libustack.so (and once
# statically against libustack.a), talks to Linux across the TAP device:
# a TCP client, a UDP echo and a non-blocking TCP echo server, each
# byte-exact. A capture on every interface of the namespace shows the
# traffic came from ustack's MAC.
source "$(dirname "$0")/../lib.sh"

ensure_net_tools
ensure_openbsd_nc
ensure_tools cc:gcc

LIB=$USTACK_ROOT/target/release
[[ -f $LIB/libustack.so && -f $LIB/libustack.a ]] || die "build first: cargo build --release"
OUT=$(test_out_dir capi)
cc -Wall -Wextra -Werror -O2 -I"$USTACK_ROOT/capi/include" "$USTACK_ROOT/examples/c/echo.c" \
    -L"$LIB" -lustack -o "$OUT/echo" || die "the C example does not build against libustack.so"
cc -Wall -Wextra -Werror -O2 -I"$USTACK_ROOT/capi/include" "$USTACK_ROOT/examples/c/echo.c" \
    "$LIB/libustack.a" -lpthread -ldl -lm -o "$OUT/echo-static" ||
    die "the C example does not build against libustack.a"
ok "examples/c/echo.c builds with cc against libustack.so and libustack.a"

netns_new NS capi
bg_start CAP "$OUT/tshark.log" "$NS" tshark -i any -w "$OUT/any.pcapng"
wait_until 10 test -s "$OUT/any.pcapng" || die "tshark did not start"

run_example() {
    local bin=$1 tag=$2
    printf 'reply from linux\n' >"$OUT/$tag.reply"
    # The Linux end of the example's TCP client: prints what it gets,
    # answers a line.
    in_ns "$NS" timeout 30 nc -l 7001 <"$OUT/$tag.reply" >"$OUT/$tag.client-got" &
    local server=$!
    wait_until 5 bash -c "ip netns exec $NS ss -ltn | grep -q :7001" || die "nc -l 7001 did not start"
    bg_start EX "$OUT/$tag.log" "$NS" env LD_LIBRARY_PATH="$LIB" "$bin" \
        tap0 10.0.7.2/24 10.0.7.1/24 7000 7001
    # stdout of the example: the reply it read.
    wait_until 15 grep -q 'udp ready' "$OUT/$tag.log" || { cat "$OUT/$tag.log" >&2; die "$tag: client part failed"; }
    wait "$server" || true
    [[ $(cat "$OUT/$tag.client-got") == "hello from C over ustack" ]] ||
        die "$tag: Linux got '$(cat "$OUT/$tag.client-got")'"
    grep -q 'reply from linux' "$OUT/$tag.log" || die "$tag: the example did not print Linux's reply"
    ok "$tag: TCP client (connect, send, shutdown, recv to end of stream)"

    local got
    got=$(printf 'udp datagram\n' | in_ns "$NS" timeout 5 nc -u -w 2 10.0.7.2 7000)
    [[ $got == "udp datagram" ]] || die "$tag: UDP echo got '$got'"
    ok "$tag: UDP datagram echoed (recvfrom, sendto)"

    wait_until 10 grep -q 'tcp listening' "$OUT/$tag.log" || die "$tag: no listener"
    head -c 2000000 /dev/urandom >"$OUT/$tag.blob"
    in_ns "$NS" timeout 30 nc -N 10.0.7.2 7000 <"$OUT/$tag.blob" >"$OUT/$tag.back" ||
        die "$tag: nc to the echo server failed"
    cmp -s "$OUT/$tag.blob" "$OUT/$tag.back" || die "$tag: 2 MB echo differs"
    wait_until 15 bash -c "! kill -0 $EX" || die "$tag: the example did not exit"
    grep -q 'echoed 2000000 bytes to 10.0.7.1' "$OUT/$tag.log" || { cat "$OUT/$tag.log" >&2; die "$tag: no final line"; }
    ok "$tag: 2 MB echoed byte-exact by the non-blocking server (poll, fcntl, accept)"
    wait_until 10 bash -c "! ip netns exec $NS ip link show tap0" || die "tap0 still exists"
}

run_example "$OUT/echo" shared
run_example "$OUT/echo-static" static

stop_pid "$CAP"
mac=$(grep -o 'MAC [0-9a-f:]*' "$OUT/shared.log" | awk '{print $2}')
n=$(count_frames "$OUT/any.pcapng" "sll.src.eth == $mac && tcp")
((n > 0)) || die "no TCP frame from ustack's MAC $mac in the capture"
n=$(count_frames "$OUT/any.pcapng" "sll.src.eth == $mac && udp.srcport == 7000")
((n > 0)) || die "no UDP echo from ustack's MAC $mac in the capture"
ok "the capture shows ustack's MAC ($mac) sending the example's traffic"
