#!/usr/bin/env bash
# The library's TAP example (sockets-api/examples/tap_echo.rs) serves Linux
# nc through a TAP device: the socket API used from a program of one's own.
source "$(dirname "$0")/../lib.sh"

EXAMPLE=$USTACK_ROOT/target/release/examples/tap_echo
[[ -x $EXAMPLE ]] || die "build first: cargo build --release -p ustack-sockets --examples"
OUT=$(test_out_dir tap-example)
netns_new NS tapex
bg_start EX "$OUT/tap_echo.log" "$NS" "$EXAMPLE" tap0 10.0.5.2/24 10.0.5.1/24 7 2
wait_until 10 ip netns exec "$NS" ping -c 1 -W 1 10.0.5.2 ||
    { cat "$OUT/tap_echo.log" >&2; die "tap_echo did not come up"; }

reply=$(printf 'hello from linux\n' | in_ns "$NS" nc -N -w 5 10.0.5.2 7)
[[ $reply == "hello from linux" ]] || die "echo: got '$reply'"
ok "nc line echoed through the example"

head -c 3000000 /dev/urandom >"$OUT/blob"
in_ns "$NS" nc -N -w 10 10.0.5.2 7 <"$OUT/blob" >"$OUT/blob.back"
cmp -s "$OUT/blob" "$OUT/blob.back" || die "3 MB echo differs"
ok "3 MB echoed byte-exact"

# It exits by itself after two connections.
wait_until 10 bash -c "! kill -0 $EX" || die "tap_echo did not exit after 2 connections"
grep -q "echoed 3000000 bytes" "$OUT/tap_echo.log" || { cat "$OUT/tap_echo.log" >&2; die "no log line"; }
ok "example exited after its connections"
