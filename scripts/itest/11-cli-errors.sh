#!/usr/bin/env bash
# Bad arguments: one clear line and exit 2. TAP errors: a clear message.
source "$(dirname "$0")/../lib.sh"

# expect_usage_error PATTERN ARGS...
expect_usage_error() {
    local pattern=$1 status=0 err
    shift
    err=$("$USTACK_BIN" "$@" 2>&1 >/dev/null) || status=$?
    [[ $status -eq 2 ]] || die "ustack $* exited $status, expected 2"
    [[ $(wc -l <<<"$err") -eq 1 ]] || die "ustack $* printed more than one line: $err"
    grep -qi -- "$pattern" <<<"$err" || die "ustack $*: '$err' does not mention '$pattern'"
    ok "ustack $*: $err"
}

expect_usage_error 'prefix' serve --tap t0 --addr 10.0.0.2/33
expect_usage_error 'A.B.C.D/LEN' serve --tap t0 --addr 10.0.0.2
expect_usage_error 'IPv4 address' serve --tap t0 --addr 10.0.0.256/24
expect_usage_error 'MAC' serve --tap t0 --addr 10.0.0.2/24 --mac 02:00:00:00:00
expect_usage_error 'gateway' serve --tap t0 --addr 10.0.0.2/24 --gateway nope
expect_usage_error 'mtu' serve --tap t0 --addr 10.0.0.2/24 --mtu 20
expect_usage_error 'required arguments.*--tap' serve --addr 10.0.0.2/24
expect_usage_error 'unexpected argument' serve --tap t0 --addr 10.0.0.2/24 --bogus
expect_usage_error 'idle-timeout' serve --tap t0 --addr 10.0.0.2/24 --echo 7 --idle-timeout 0
expect_usage_error 'max-conns' serve --tap t0 --addr 10.0.0.2/24 --echo 7 --max-conns 0
expect_usage_error 'max-conns-per-ip' serve --tap t0 --addr 10.0.0.2/24 --echo 7 --max-conns-per-ip many

# expect_failure PATTERN CMD...: exit 1 with a message matching PATTERN.
expect_failure() {
    local pattern=$1 status=0 err
    shift
    err=$("$@" 2>&1 >/dev/null) || status=$?
    [[ $status -eq 1 ]] || die "$* exited $status, expected 1 ($err)"
    grep -qi -- "$pattern" <<<"$err" || die "$*: '$err' does not mention '$pattern'"
    ok "$(basename "$1") ${*:2}: $err"
}

netns_new NS clierr
expect_failure 'too long' in_ns "$NS" "$USTACK_BIN" serve --tap a-very-long-tap-name --addr 10.0.0.2/24
expect_failure 'CAP_NET_ADMIN' in_ns "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$USTACK_BIN" serve --tap tap9 --addr 10.0.0.2/24

OUT=$(test_out_dir cli-errors)
start_host FIRST "$NS" tap0 10.0.0.2/24 10.0.0.1/24 "$OUT/first.log"
expect_failure 'busy' in_ns "$NS" "$USTACK_BIN" serve --tap tap0 --addr 10.0.0.3/24
in_ns "$NS" ip link add veth0 type veth peer name veth1
expect_failure 'busy' in_ns "$NS" "$USTACK_BIN" serve --tap veth0 --addr 10.0.0.3/24
