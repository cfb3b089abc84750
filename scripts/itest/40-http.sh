#!/usr/bin/env bash
# `ustack serve --http` against curl: ranges, HEAD, keep-alive, 404 and
# every way out of the root refused (clean capture); then a 100 MiB file
# byte-exact and 20 parallel downloads byte-exact.
source "$(dirname "$0")/../lib.sh"

OUT=$(test_out_dir http)
ROOT=$OUT/root
mkdir -p "$ROOT/sub"
head -c $((100 << 20)) /dev/urandom >"$ROOT/big.bin"
head -c $((8 << 20)) /dev/urandom >"$ROOT/sub/mid.bin"
head -c 100000 /dev/urandom >"$ROOT/small.bin"
printf '<h1>ustack</h1>\n' >"$ROOT/index.html"
printf 'outside the root\n' >"$OUT/secret.txt"
ln -s "$OUT/secret.txt" "$ROOT/escape.txt"
ln -s "$OUT" "$ROOT/updir"
sha() { sha256sum "$1" | cut -d' ' -f1; }
# code PATH [CURL ARGS...]: the status code curl gets for PATH.
code() {
    local path=$1
    shift
    in_ns "$NS" curl -sS --max-time 20 -o "$OUT/body" -w '%{http_code}' "$@" "http://10.0.0.2$path"
}
netns_new NS http

# The access log is at info level.
export RUST_LOG=warn,ustack::services=info
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/small.log" \
    --http 80 --http-root "$ROOT" --pcap "$OUT/http.pcap"

[[ $(code /) == 200 ]] && grep -q ustack "$OUT/body" || die "GET / did not give index.html"
[[ $(code /small.bin) == 200 ]] && cmp -s "$OUT/body" "$ROOT/small.bin" || die "small file differs"
ok "GET / (index.html) and a 100 kB file"

[[ $(code /small.bin -r 0-99) == 206 ]] && cmp -s "$OUT/body" <(head -c 100 "$ROOT/small.bin") ||
    die "range 0-99"
[[ $(code /small.bin -r 1000-1999) == 206 ]] &&
    cmp -s "$OUT/body" <(tail -c +1001 "$ROOT/small.bin" | head -c 1000) || die "range 1000-1999"
[[ $(code /small.bin -r -500) == 206 ]] && cmp -s "$OUT/body" <(tail -c 500 "$ROOT/small.bin") ||
    die "suffix range -500"
[[ $(code /small.bin -r 99990-) == 206 ]] && cmp -s "$OUT/body" <(tail -c 10 "$ROOT/small.bin") ||
    die "open range 99990-"
[[ $(code /small.bin -r 200000-) == 416 ]] || die "unsatisfiable range not refused with 416"
ok "curl -r: 0-99, 1000-1999, -500, 99990- byte-exact (206); past the end: 416"

head=$(in_ns "$NS" curl -sS -I http://10.0.0.2/small.bin | tr -d '\r')
grep -q '^HTTP/1.1 200' <<<"$head" && grep -qi '^content-length: 100000$' <<<"$head" ||
    { echo "$head" >&2; die "HEAD"; }
in_ns "$NS" curl -sS -v -o "$OUT/ka1" -o "$OUT/ka2" http://10.0.0.2/small.bin \
    http://10.0.0.2/sub/mid.bin 2>"$OUT/keepalive.txt"
cmp -s "$OUT/ka1" "$ROOT/small.bin" && cmp -s "$OUT/ka2" "$ROOT/sub/mid.bin" || die "keep-alive downloads"
grep -qi 're-using existing connection' "$OUT/keepalive.txt" || die "curl did not reuse the connection"
ok "HEAD; two files over one persistent connection"

[[ $(code /nope.txt) == 404 ]] || die "missing file not 404"
for path in /../secret.txt /%2e%2e/secret.txt /sub/..%2f..%2fsecret.txt /sub/%2E%2E/%2E%2E/secret.txt \
    /escape.txt /updir/secret.txt '/..%5csecret.txt'; do
    status=$(code "$path" --path-as-is)
    [[ $status == 40[034] ]] || die "$path answered $status"
    ! grep -q 'outside the root' "$OUT/body" || die "$path leaked a file outside the root"
    ok "GET $path --path-as-is: $status"
done

stop_pid "$USTACK"
logged=$(grep -c '"GET /small.bin HTTP/1.1" 200 100000' "$OUT/small.log" || true)
((logged >= 2)) || die "access log lines missing ($logged)"
grep -q 'TCP connections closed' "$OUT/small.log" || die "no exit summary"
check_pcap "$OUT/http.pcap"
ok "access log at info level; exit summary; capture clean"

# Bulk, without a capture (the pcap writer would be the bottleneck).
start_host USTACK "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/bulk.log" --http 80 --http-root "$ROOT"
speed=$(in_ns "$NS" curl -sS --fail --max-time 120 -o "$OUT/big.got" -w '%{speed_download}' \
    http://10.0.0.2/big.bin)
[[ $(sha "$OUT/big.got") == $(sha "$ROOT/big.bin") ]] || die "100 MiB download differs"
rm -f "$OUT/big.got"
ok "100 MiB byte-exact (sha256), $((${speed%.*} >> 20)) MiB/s"

pids=()
for i in $(seq 1 20); do
    in_ns "$NS" curl -sS --fail --max-time 120 -o "$OUT/par.$i" http://10.0.0.2/sub/mid.bin &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || die "a parallel curl failed"; done
want=$(sha "$ROOT/sub/mid.bin")
for i in $(seq 1 20); do
    [[ $(sha "$OUT/par.$i") == "$want" ]] || die "parallel download $i differs"
done
rm -f "$OUT"/par.*
ok "20 parallel downloads of 8 MiB, all byte-exact"
stop_pid "$USTACK"
grep -q '^services-totals: closed=21 resets=0 errors=0 open=0 ' "$OUT/bulk.log" ||
    { grep '^services' "$OUT/bulk.log" >&2; die "exit summary does not show 21 clean connections"; }
ok "exit summary: 21 connections closed cleanly"
rm -rf "$ROOT"
