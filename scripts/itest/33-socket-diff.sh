#!/usr/bin/env bash
# Socket semantics, differentially: tests/src/bin/socket-diff runs one list
# of scenarios against Linux kernel sockets and against ustack sockets with
# the same Linux peer, and compares every return value, errno, byte, poll
# revents and whether a call blocked. Topology:
#
#   namespace L                 namespace P (peer; the harness runs here)
#   veth 10.77.1.2/24  <---->   veth 10.77.1.1/24
#   (Linux sockets under test)  tap0 10.77.0.1/24  <---->  ustack 10.77.0.2/24
#
# Fails on any difference not accepted in the harness's table. Both traces
# of every scenario are in target/itest/socket-diff/socket-diff.log.
# Arguments go to the harness (e.g. --only after_peer_rst).
source "$(dirname "$0")/../lib.sh"

BIN=${SOCKET_DIFF_BIN:-$USTACK_ROOT/target/release/socket-diff}
[[ -x $BIN ]] || die "build first: cargo build --release (or -p tests --bin socket-diff)"
OUT=$(test_out_dir socket-diff)
netns_new P sdpeer
netns_new L sdlinux

# The veth pair goes away with either namespace; delete it explicitly too.
veth_p="sdp$$" veth_l="sdl$$"
ip link add "$veth_p" type veth peer name "$veth_l"
cleanup_push "ip link del '$veth_p'"
ip link set "$veth_p" netns "$P"
cleanup_push "ip netns exec '$P' ip link del '$veth_p'"
ip link set "$veth_l" netns "$L"
in_ns "$P" ip addr add 10.77.1.1/24 dev "$veth_p"
in_ns "$P" ip link set "$veth_p" up
in_ns "$L" ip addr add 10.77.1.2/24 dev "$veth_l"
in_ns "$L" ip link set "$veth_l" up
# Limited broadcast (255.255.255.255) needs a route to leave; ustack sends
# it on its only link, so L gets the equivalent on-link route (no gateway).
in_ns "$L" ip route add 255.255.255.255/32 dev "$veth_l"
wait_until 10 in_ns "$L" ping -c 1 -W 1 10.77.1.1 || die "veth link did not come up"

# The harness opens tap0 itself (ustack gives the kernel side 10.77.0.1/24);
# the TAP device disappears with namespace P.
status=0
in_ns "$P" timeout --kill-after=5 180 "$BIN" --linux-netns "$L" --linux-addr 10.77.1.2 \
    --peer-linux 10.77.1.1 --tap tap0 --ustack-addr 10.77.0.2/24 --peer-ustack 10.77.0.1 \
    -v "$@" >"$OUT/socket-diff.log" 2>&1 || status=$?
# The log has both traces of every scenario (-v); show the verdicts.
grep -v '^    ' "$OUT/socket-diff.log" | sed 's/^/    /' >&2
summary=$(grep '^socket-diff:' "$OUT/socket-diff.log" || true)
[[ -n $summary ]] || die "socket-diff did not finish (exit $status)"
((status == 0)) || die "socket-diff: differences from Linux not accepted ($summary)"
ok "$summary"
