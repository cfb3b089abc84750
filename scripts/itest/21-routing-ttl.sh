#!/usr/bin/env bash
# Routing: replies to an off-link source follow --route or --gateway, and
# have no route otherwise; --ttl sets the TTL of what ustack sends.
source "$(dirname "$0")/../lib.sh"

OUT=$(test_out_dir routing)
netns_new NS route
# Linux is the router: it owns 10.0.0.1 on the TAP and 192.168.5.1 and
# 172.16.0.1 on its loopback, and pings ustack from those.
in_ns "$NS" ip addr add 192.168.5.1/32 dev lo
in_ns "$NS" ip addr add 172.16.0.1/32 dev lo

start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/plain.log" --ttl 17
result=$(in_ns "$NS" ping -c 2 -i 0.1 10.0.0.2)
grep -q 'ttl=17' <<<"$result" || { echo "$result" >&2; die "--ttl 17 not applied"; }
ok "--ttl 17: replies carry TTL 17"
if in_ns "$NS" ping -c 2 -i 0.1 -W 1 -I 192.168.5.1 10.0.0.2 >/dev/null 2>&1; then
    die "ustack answered an off-link source without a route"
fi
stop_pid "$USTACK"
grep -q 'no route to destination' "$OUT/plain.log" || die "no-route drop not counted"
ok "without a route: off-link replies dropped and counted"

start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/route.log" \
    --route 192.168.0.0/16 via 10.0.0.1
result=$(in_ns "$NS" ping -c 3 -i 0.1 -W 2 -I 192.168.5.1 10.0.0.2)
grep -q ' 3 received' <<<"$result" || { echo "$result" >&2; die "--route not used"; }
if in_ns "$NS" ping -c 1 -W 1 -I 172.16.0.1 10.0.0.2 >/dev/null 2>&1; then
    die "172.16.0.1 should not be covered by the 192.168/16 route"
fi
stop_pid "$USTACK"
ok "--route 192.168.0.0/16 via 10.0.0.1: used for 192.168.5.1, not for 172.16.0.1"

start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/gw.log" --gateway 10.0.0.1
result=$(in_ns "$NS" ping -c 3 -i 0.1 -W 2 -I 172.16.0.1 10.0.0.2)
grep -q ' 3 received' <<<"$result" || { echo "$result" >&2; die "--gateway not used"; }
stop_pid "$USTACK"
ok "--gateway 10.0.0.1: default route used for 172.16.0.1"

status=0
err=$(in_ns "$NS" "$USTACK_BIN" serve --tap tap1 --addr 10.0.0.2/24 --gateway 10.9.9.9 2>&1) || status=$?
[[ $status -eq 2 ]] && grep -q 'not a neighbor' <<<"$err" || die "off-link gateway accepted ($status: $err)"
ok "off-link gateway refused: $err"
status=0
err=$(in_ns "$NS" "$USTACK_BIN" serve --tap tap1 --addr 10.0.0.2/24 --route 10.1.0.0/16 through 10.0.0.1 2>&1) || status=$?
[[ $status -eq 2 ]] && grep -q "expected 'via'" <<<"$err" || die "bad --route accepted ($status: $err)"
ok "malformed --route refused: $err"
