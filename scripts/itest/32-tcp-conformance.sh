#!/usr/bin/env bash
# TCP conformance that Linux can show:
#   - urgent data both ways with Linux (RFC 9293 3.8.5): Linux takes the
#     last urgent octet out of band exactly where ustack's urgent pointer
#     says, and ustack signals Linux's urgent data (POLLPRI) and stops a read
#     at its mark (sockets-api/examples/tap_urgent.rs, scripts/tools/urgent_peer.py);
#   - the peer's MSS with TAP offloads: a client whose SYN has no MSS option
#     (RFC 9293 3.7.1: 536) gets super segments whose GSO size (what the
#     kernel cuts them at) is 536, and 536-byte segments without offloads
#     (scripts/tools/mss_probe.py reads the virtio-net header of every frame).
source "$(dirname "$0")/../lib.sh"

OUT=$(test_out_dir tcp-conformance)
EXAMPLE=$USTACK_ROOT/target/release/examples/tap_urgent
[[ -x $EXAMPLE ]] || die "build first: cargo build --release -p ustack-sockets --examples"
netns_new NS conf

bg_start PEER "$OUT/peer.log" "$NS" python3 "$USTACK_ROOT/scripts/tools/urgent_peer.py" 10.0.6.1 7000
# The peer can listen once the example has brought its TAP device up; the
# example retries its connect until it does.
in_ns "$NS" "$EXAMPLE" tap0 10.0.6.2/24 10.0.6.1/24 10.0.6.1:7000 >"$OUT/example.log" 2>&1 &
EX=$!
cleanup_push "kill $EX 2>/dev/null"
wait_until 20 grep -q 'before mark' "$OUT/peer.log" ||
    { cat "$OUT/peer.log" "$OUT/example.log" >&2; die "Linux did not read the urgent data"; }
grep -q 'before mark: hello oob: ! after: world' "$OUT/peer.log" ||
    { cat "$OUT/peer.log" >&2; die "Linux saw the urgent data elsewhere"; }
ok "ustack -> Linux: Linux's SIOCATMARK stops at 'hello', recv(MSG_OOB) gives '!', then 'world'"
wait "$EX" || { cat "$OUT/example.log" >&2; die "the example failed"; }
grep -q 'mark after 3 bytes: Z' "$OUT/example.log" && grep -q 'read: abcZdef' "$OUT/example.log" ||
    { cat "$OUT/example.log" >&2; die "ustack did not see Linux's urgent data right"; }
ok "Linux -> ustack: POLLPRI, sockatmark after 'abc' at 'Z', delivered in line ('abcZdef')"

start_host U "$NS" tap1 10.0.7.2/24 10.0.7.1/24 "$OUT/chargen.log" --chargen 19
out=$(in_ns "$NS" python3 "$USTACK_ROOT/scripts/tools/mss_probe.py" tap1 10.0.7.2 10.0.7.99 19)
echo "$out" | sed 's/^/    /' >&2
grep -q '^max gso_size 536$' <<<"$out" || die "super segments not cut at the peer's MSS"
stop_pid "$U"
start_host U "$NS" tap1 10.0.7.2/24 10.0.7.1/24 "$OUT/chargen2.log" --chargen 19 --no-offload
out=$(in_ns "$NS" python3 "$USTACK_ROOT/scripts/tools/mss_probe.py" tap1 10.0.7.2 10.0.7.99 19)
grep -q '^max payload 536$' <<<"$out" || { echo "$out" >&2; die "segments above the peer's MSS"; }
stop_pid "$U"
ok "a SYN without MSS: GSO size 536 with offloads, 536-byte segments without (RFC 9293 3.7.1)"
