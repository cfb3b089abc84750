#!/usr/bin/env bash
# Per-node keys for 2PC: a key ring (`--keys`, lines `ID HEXKEY`) that its
# group or others may read is refused before anything starts; then
# scripts/demo-2pc --per-node-keys runs the system with one key per node,
# and an attacker holding bank-2's own key claims to be the coordinator
# (node 0), then tries with no key: every attempt must be refused, the
# servers must have logged the refusals, and the verdict must hold.
source "$(dirname "$0")/../lib.sh"

OUT=$(test_out_dir 2pc-keys)
RING=$OUT/ring
rm -f "$RING" "$OUT"/k-*
for id in 0 1; do
    "$USTACK_BIN" 2pc keygen --key-file "$OUT/k-$id" >/dev/null || die "keygen failed"
    echo "$id $(cat "$OUT/k-$id")" >>"$RING"
done
chmod 644 "$RING"
status=0
err=$("$USTACK_BIN" rpc names --tap t-none --addr 10.0.0.1/24 --listen 5000 --keys "$RING" 2>&1) ||
    status=$?
((status != 0)) || die "a world-readable key ring was accepted"
grep -q "accessible by others" <<<"$err" || die "unclear refusal of a world-readable ring: $err"
ok "a world-readable key ring is refused: $err"

timeout --kill-after=10 300 "$USTACK_ROOT/scripts/demo-2pc" --seed 11 --transfers 16 \
    --per-node-keys --attack --no-build >"$OUT/demo.out" 2>&1 || {
    tail -30 "$OUT/demo.out" >&2
    die "demo-2pc --per-node-keys --attack failed (logs in target/itest/demo-2pc)"
}
line=$(grep "attack (bank-2's own key claiming node 0" "$OUT/demo.out") ||
    die "no attack summary in $OUT/demo.out"
logged=$(sed -n 's/.*the servers logged \([0-9]*\) refused connections.*/\1/p' <<<"$line")
((logged > 0)) || die "the servers logged no refused connection: $line"
claimed=$(grep -h "identity 0 did not prove its key" "$USTACK_ROOT"/target/itest/demo-2pc/*.log | wc -l)
((claimed > 0)) || die "no server logged bank-2's key claiming node 0 as refused"
ok "per-node keys: ${line#*: } ($claimed refusals of node 0's identity without its key)"
ok "2PC with per-node keys: 16 transfers with crashes, verdict holds"
