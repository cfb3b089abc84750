#!/usr/bin/env bash
# The async examples (feature `tokio`) over TAP against Linux programs:
# hyper_server answers curl byte-exact (GET /, GET /bytes/N, keep-alive)
# and `ab -k -c 50 -n 20000` with every response right; tokio_echo echoes
# nc byte-exact; hyper_client fetches from a Linux HTTP server what curl
# fetches.
source "$(dirname "$0")/../lib.sh"

EX=$USTACK_ROOT/target/release/examples
for e in hyper_server tokio_echo hyper_client; do
    [[ -x $EX/$e ]] || die "build first: cargo build --release -p ustack-sockets --examples"
done
ensure_tools ab:apache2-utils curl:curl python3:python3
ensure_openbsd_nc
OUT=$(test_out_dir async)

# pattern N: the first N bytes of hyper_server's /bytes pattern.
pattern() {
    python3 -c 'import sys; n = int(sys.argv[1]); sys.stdout.buffer.write((b"abcdefghijklmnopqrstuvwxyz" * (n // 26 + 1))[:n])' "$1"
}

# --- hyper_server -------------------------------------------------------------
netns_new NS async
bg_start HYP "$OUT/hyper_server.log" "$NS" "$EX/hyper_server" --tap tap0 \
    --addr 10.0.38.2/24 --host-addr 10.0.38.1/24 --port 80
wait_until 10 ip netns exec "$NS" ping -c 1 -W 1 10.0.38.2 ||
    { cat "$OUT/hyper_server.log" >&2; die "hyper_server did not come up"; }
URL=http://10.0.38.2

body=$(in_ns "$NS" curl -sS --max-time 10 "$URL/")
[[ $body == "hello from hyper on ustack" ]] || die "GET /: got '$body'"
ok "curl GET / answered"

for n in 0 1 26 1000 100000 1048576 3000000; do
    in_ns "$NS" curl -sS --max-time 30 -o "$OUT/bytes.$n" "$URL/bytes/$n"
    pattern "$n" >"$OUT/expect.$n"
    cmp -s "$OUT/bytes.$n" "$OUT/expect.$n" || die "GET /bytes/$n differs from the pattern"
done
ok "curl GET /bytes/N byte-exact for N up to 3,000,000"

code=$(in_ns "$NS" curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/nothing")
[[ $code == 404 ]] || die "GET /nothing: $code"
ok "unknown path is 404"

# Several URLs in one curl run go over one kept-alive connection.
in_ns "$NS" curl -sS -v --max-time 10 -o /dev/null -o /dev/null -o /dev/null \
    "$URL/" "$URL/bytes/5000" "$URL/" 2>"$OUT/curl-keepalive.log"
grep -qi "re-using existing connection" "$OUT/curl-keepalive.log" ||
    { cat "$OUT/curl-keepalive.log" >&2; die "curl did not reuse the connection"; }
ok "HTTP/1.1 keep-alive: curl reuses the connection"

# check_ab LOG REQUESTS LENGTH: every response complete, 2xx, kept alive,
# with the expected length.
check_ab() {
    local log=$1 n=$2 len=$3
    grep -Eq "^Complete requests: +$n\$" "$log" || { cat "$log" >&2; die "ab: not $n complete requests"; }
    grep -Eq '^Failed requests: +0$' "$log" || { cat "$log" >&2; die "ab: failed requests"; }
    ! grep -q '^Non-2xx responses' "$log" || { cat "$log" >&2; die "ab: non-2xx responses"; }
    grep -Eq "^Keep-Alive requests: +$n\$" "$log" || { cat "$log" >&2; die "ab: not every request kept alive"; }
    grep -Eq "^Document Length: +$len bytes\$" "$log" || { cat "$log" >&2; die "ab: wrong document length"; }
    grep -Eq "^HTML transferred: +$((n * len)) bytes\$" "$log" || { cat "$log" >&2; die "ab: wrong byte count"; }
}
in_ns "$NS" ab -q -k -c 50 -n 20000 "$URL/" >"$OUT/ab-hello.log" 2>&1 ||
    { cat "$OUT/ab-hello.log" >&2; die "ab failed"; }
check_ab "$OUT/ab-hello.log" 20000 27
ok "ab -k -c 50 -n 20000 GET /: every response right ($(awk '/^Requests per second/{print $4}' "$OUT/ab-hello.log") req/s)"
in_ns "$NS" ab -q -k -c 50 -n 5000 "$URL/bytes/10000" >"$OUT/ab-bytes.log" 2>&1 ||
    { cat "$OUT/ab-bytes.log" >&2; die "ab failed"; }
check_ab "$OUT/ab-bytes.log" 5000 10000
ok "ab -k -c 50 -n 5000 GET /bytes/10000: every response right"
kill -0 "$HYP" || { cat "$OUT/hyper_server.log" >&2; die "hyper_server died"; }
! grep -qi "error\|panic" "$OUT/hyper_server.log" || { cat "$OUT/hyper_server.log" >&2; die "hyper_server logged errors"; }
ok "hyper_server logged no error"

# --- tokio_echo -----------------------------------------------------------------
netns_new NS2 asyncecho
bg_start ECHO "$OUT/tokio_echo.log" "$NS2" "$EX/tokio_echo" --tap tap0 \
    --addr 10.0.39.2/24 --host-addr 10.0.39.1/24 --port 7 --connections 2
wait_until 10 ip netns exec "$NS2" ping -c 1 -W 1 10.0.39.2 ||
    { cat "$OUT/tokio_echo.log" >&2; die "tokio_echo did not come up"; }
reply=$(printf 'hello from linux\n' | in_ns "$NS2" nc -N -w 5 10.0.39.2 7)
[[ $reply == "hello from linux" ]] || die "echo: got '$reply'"
head -c 3000000 /dev/urandom >"$OUT/blob"
in_ns "$NS2" nc -N -w 10 10.0.39.2 7 <"$OUT/blob" >"$OUT/blob.back"
cmp -s "$OUT/blob" "$OUT/blob.back" || die "3 MB echo differs"
wait_until 10 bash -c "! kill -0 $ECHO" || die "tokio_echo did not exit after 2 connections"
grep -q "echoed 3000000 bytes" "$OUT/tokio_echo.log" || { cat "$OUT/tokio_echo.log" >&2; die "no log line"; }
ok "tokio_echo: nc line and 3 MB echoed byte-exact"

# --- hyper_client -----------------------------------------------------------------
netns_new NS3 asyncclient
bg_start BLOB "$OUT/blob_server.log" "$NS3" python3 "$USTACK_ROOT/scripts/tools/http_blob_server.py" 8080 2000000
# The client's TAP appears when it starts; it retries until the server
# answers (the first runs may race the TAP's address).
fetch() {
    in_ns "$NS3" "$EX/hyper_client" --tap tap0 --addr 10.0.40.2/24 --host-addr 10.0.40.1/24 \
        "http://10.0.40.1:8080/blob" >"$OUT/client.body" 2>"$OUT/client.log"
}
wait_until 20 fetch || { cat "$OUT/client.log" "$OUT/blob_server.log" >&2; die "hyper_client failed"; }
in_ns "$NS3" curl -sS --max-time 10 -o "$OUT/curl.body" http://127.0.0.1:8080/blob
[[ $(stat -c %s "$OUT/client.body") == 2000000 ]] || die "hyper_client: wrong length"
cmp -s "$OUT/client.body" "$OUT/curl.body" || die "hyper_client's body differs from curl's"
ok "hyper_client fetched 2,000,000 bytes through ustack, as curl does"
