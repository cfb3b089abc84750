#!/usr/bin/env bash
# `ustack serve --http` against a slowloris from Linux
# (scripts/tools/http_slowloris.py): hundreds of connections sending a
# request head one byte a second are cut by the request-head deadline
# (10 s, capped by --idle-timeout) while Linux curl keeps downloading
# byte-exact; the thread count of ustack never changes. Then --max-conns:
# the excess gets 503 (up to 256 such connections at a time), beyond
# that a RST, and the exit summary counts it all.
source "$(dirname "$0")/../lib.sh"
require_root
ensure_net_tools

OUT=$(test_out_dir http-dos)
ROOT=$OUT/root
mkdir -p "$ROOT"
head -c $((64 << 20)) /dev/urandom >"$ROOT/blob"
want=$(sha256sum "$ROOT/blob" | cut -d' ' -f1)
netns_new NS hdos
IDLE=4
SLOW=300
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/ustack.log" \
    --http 80 --http-root "$ROOT" --idle-timeout "$IDLE" --max-conns 1000 --max-conns-per-ip 1000
[[ $(cat "/proc/$USTACK/comm") == ustack ]] || die "pid $USTACK is not ustack"
threads=$(ls "/proc/$USTACK/task" | wc -l)

in_ns "$NS" timeout 120 python3 "$USTACK_ROOT/scripts/tools/http_slowloris.py" \
    10.0.0.2 80 "$USTACK" "$SLOW" 60 >"$OUT/slowloris.log" 2>&1 &
loris=$!
downloads=0
while kill -0 "$loris" 2>/dev/null; do
    got=$(in_ns "$NS" curl -sS --fail --max-time 60 http://10.0.0.2/blob | sha256sum | cut -d' ' -f1)
    [[ $got == "$want" ]] || die "download $downloads differs during the slowloris"
    downloads=$((downloads + 1))
    [[ $(ls "/proc/$USTACK/task" | wc -l) == "$threads" ]] || die "the thread count changed"
done
wait "$loris" || { cat "$OUT/slowloris.log" >&2; die "http_slowloris.py failed"; }
cat "$OUT/slowloris.log" >&2
grep -q '^ok all' "$OUT/slowloris.log" || die "the slowloris did not finish"
((downloads >= 1)) || die "no download during the slowloris"
ok "$SLOW slow connections cut; $downloads curl downloads of 64 MiB byte-exact meanwhile; $threads threads throughout"

stop_pid "$USTACK"
totals=$(grep '^services-totals:' "$OUT/ustack.log") || { cat "$OUT/ustack.log" >&2; die "no services-totals line"; }
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$totals"; }
(($(field http_head_timeouts) == SLOW)) || die "http_head_timeouts=$(field http_head_timeouts), expected $SLOW: $totals"
(($(field http_requests) == downloads)) || die "http_requests=$(field http_requests), expected $downloads: $totals"
ok "exit summary: http_head_timeouts=$SLOW http_requests=$downloads"

# Over --max-conns 2: 503 for up to 256 more, then a RST.
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/cap.log" \
    --http 80 --http-root "$ROOT" --max-conns 2 --max-conns-per-ip 1000
in_ns "$NS" timeout 60 python3 - <<'EOF2' || die "503 over --max-conns"
import socket, time
def conn():
    s = socket.create_connection(("10.0.0.2", 80), timeout=5)
    s.settimeout(5)
    return s
req = b"GET /blob HTTP/1.1\r\nHost: 10.0.0.2\r\nRange: bytes=0-9\r\n\r\n"
served = [conn() for _ in range(2)]
for s in served:
    s.sendall(req)
    assert s.recv(4096).startswith(b"HTTP/1.1 206"), "served"
time.sleep(0.2)
busy = [conn() for _ in range(256)]
time.sleep(0.5)
try:
    s = conn()
    s.sendall(req)
    data = s.recv(4096)
    assert data == b"", f"beyond the busy cap: {data[:40]!r}"
except (ConnectionResetError, BrokenPipeError):
    pass
for s in busy[:3]:
    s.sendall(req)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 503 "), data[:60]
    assert b"\r\nRetry-After: " in data, data
EOF2
stop_pid "$USTACK"
grep -q 'refused_max_conns=1 ' "$OUT/cap.log" && grep -q 'http_busy=3' "$OUT/cap.log" ||
    { grep services "$OUT/cap.log" >&2; die "503s and the RST not counted"; }
ok "--max-conns 2: 503 with Retry-After for the excess, a RST beyond 256 of them; counted"
