#!/usr/bin/env bash
# Two-phase commit across five ustack processes (name service, coordinator,
# three banks) on a bridge, with SIGKILLs and crash points: runs
# scripts/demo-2pc with a fixed seed and 30 transfers; fails if its verdict
# (money conserved, every node agrees on every outcome, nothing undecided)
# does not hold.
source "$(dirname "$0")/../lib.sh"

timeout --kill-after=10 240 "$USTACK_ROOT/scripts/demo-2pc" --seed 7 --transfers 30 --no-build ||
    die "demo-2pc --seed 7 --transfers 30 failed (logs in target/itest/demo-2pc)"
ok "2PC over ustack RPC: 30 transfers with crashes, verdict holds"
