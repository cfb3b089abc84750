#!/usr/bin/env bash
# `ustack serve --echo` against hostile and vanished Linux clients
# (scripts/tools/services_dos.py): hundreds of connections that trickle a
# byte a second or vanish, while a live client keeps getting echoes. The
# thread count of ustack never changes, vanished connections are closed
# after --idle-timeout, --max-conns refuses the excess with a RST, and the
# exit summary counts both.
source "$(dirname "$0")/../lib.sh"
require_root
ensure_net_tools

OUT=$(test_out_dir services-dos)
netns_new NS dos
IDLE=3
MAX=400
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/ustack.log" \
    --echo 7 --idle-timeout "$IDLE" --max-conns "$MAX" --max-conns-per-ip 1000
[[ $(cat "/proc/$USTACK/comm") == ustack ]] || die "pid $USTACK is not ustack"
idle_threads=$(ls "/proc/$USTACK/task" | wc -l)

in_ns "$NS" timeout 120 python3 "$USTACK_ROOT/scripts/tools/services_dos.py" \
    10.0.0.2 7 "$USTACK" "$IDLE" "$MAX" 300 | tee "$OUT/client.log" >&2 ||
    { tail -20 "$OUT/ustack.log" >&2; die "services_dos.py failed"; }
grep -q '^ok all closed' "$OUT/client.log" || die "the client did not finish"
ok "ustack kept $idle_threads threads through 301 connections, trickling and vanishing"

stop_pid "$USTACK"
totals=$(grep '^services-totals:' "$OUT/ustack.log") || { cat "$OUT/ustack.log" >&2; die "no services-totals line"; }
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$totals"; }
(($(field idle_closed) >= 150)) || die "idle_closed=$(field idle_closed), expected at least 150: $totals"
(($(field refused_max_conns) == 10)) || die "refused_max_conns=$(field refused_max_conns), expected 10: $totals"
(($(field refused_per_ip) == 0)) || die "refused_per_ip=$(field refused_per_ip): $totals"
ok "exit summary: idle_closed=$(field idle_closed) refused_max_conns=10 refused_per_ip=0"

# The per-address cap, with a fresh server.
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/per-ip.log" \
    --echo 7 --max-conns-per-ip 5
in_ns "$NS" timeout 60 python3 - <<'EOF' || die "per-IP cap"
import socket
socks, refused = [], 0
for i in range(8):
    try:
        s = socket.create_connection(("10.0.0.2", 7), timeout=5)
    except ConnectionResetError:  # the RST beat connect() back
        refused += 1
        continue
    try:
        s.sendall(b"x")
        if s.recv(1) != b"x":
            raise ConnectionError("no echo")
        socks.append(s)
    except OSError:
        refused += 1
assert (len(socks), refused) == (5, 3), (len(socks), refused)
EOF
stop_pid "$USTACK"
grep -q 'refused_per_ip=3' "$OUT/per-ip.log" || { cat "$OUT/per-ip.log" >&2; die "per-IP refusals not counted"; }
ok "--max-conns-per-ip 5: the sixth to eighth connections reset and counted"
