# shellcheck shell=bash
# Shared helpers for ustack's scripts: tools, cargo under sudo, network
# namespaces, background processes and guaranteed cleanup.
#
# Source it; it sets `set -euo pipefail` and an EXIT trap that undoes
# everything registered with cleanup_push, in reverse order, also when a
# command fails or the script is interrupted.

set -euo pipefail

USTACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
USTACK_BIN="$USTACK_ROOT/target/release/ustack"

if [[ -t 2 ]]; then
    _B=$'\033[1m' _G=$'\033[32m' _R=$'\033[31m' _N=$'\033[0m'
else
    _B='' _G='' _R='' _N=''
fi

log() { printf '%s==> %s%s\n' "$_B" "$*" "$_N" >&2; }
ok() { printf '%s  ok%s %s\n' "$_G" "$_N" "$*" >&2; }
die() {
    printf '%serror:%s %s\n' "$_R" "$_N" "$*" >&2
    exit 1
}

require_root() {
    [[ $EUID -eq 0 ]] || die "run as root (sudo $0): TAP devices and network namespaces need CAP_NET_ADMIN"
}

# Finds cargo even under sudo, whose PATH and HOME are root's: falls back to
# the invoking user's rustup installation.
ensure_cargo() {
    command -v cargo >/dev/null 2>&1 && return 0
    local home
    for home in "$HOME" "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)" /root; do
        if [[ -n $home && -x $home/.cargo/bin/cargo ]]; then
            export PATH="$home/.cargo/bin:$PATH"
            [[ -d $home/.rustup ]] && export RUSTUP_HOME="$home/.rustup"
            export CARGO_HOME="$home/.cargo"
            return 0
        fi
    done
    die "cargo not found: install Rust (https://rustup.rs) first"
}

# ensure_tools CMD:PACKAGE ... installs the Debian packages whose command is
# missing (one apt-get run, after apt-get update).
ensure_tools() {
    local spec cmd pkgs=()
    for spec in "$@"; do
        cmd=${spec%%:*}
        command -v "$cmd" >/dev/null 2>&1 || pkgs+=("${spec#*:}")
    done
    ((${#pkgs[@]} == 0)) && return 0
    log "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
}

# The Linux programs the tests and demos talk to.
ensure_net_tools() {
    ensure_tools ip:iproute2 ping:iputils-ping arping:iputils-arping \
        tshark:tshark nc:netcat-openbsd curl:curl python3:python3 \
        timeout:coreutils setpriv:util-linux
}

# --- cleanup ---------------------------------------------------------------

_CLEANUP=()
cleanup_push() { _CLEANUP+=("$*"); }
_run_cleanup() {
    local i
    for ((i = ${#_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${_CLEANUP[$i]}" >/dev/null 2>&1 || true
    done
    _CLEANUP=()
}
trap _run_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- namespaces and processes -----------------------------------------------

# netns_new VAR NAME: creates namespace ustk-NAME-PID with loopback up,
# stores its name in VAR, and deletes it on exit.
netns_new() {
    local var=$1 ns="ustk-$2-$$"
    ip netns add "$ns"
    cleanup_push "ip netns del '$ns'"
    ip netns exec "$ns" ip link set lo up
    printf -v "$var" '%s' "$ns"
}

# in_ns NS CMD...: runs CMD inside the namespace.
in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# stop_pid PID: SIGINT, then SIGKILL if it is still there after 5 s.
stop_pid() {
    local pid=$1 i
    kill -INT "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# bg_start VAR LOG NS CMD...: starts CMD in NS in the background, output to
# LOG; stores the PID in VAR; stops it on exit.
bg_start() {
    local var=$1 logfile=$2 ns=$3
    shift 3
    ip netns exec "$ns" "$@" >"$logfile" 2>&1 &
    local pid=$!
    cleanup_push "stop_pid $pid"
    printf -v "$var" '%s' "$pid"
}

# wait_until SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# USTACK_MEDIUM=tun runs a test's hosts on TUN devices (an IP link: no
# Ethernet header, no ARP) instead of TAP: start_host opens tunN for tapN.
USTACK_MEDIUM=${USTACK_MEDIUM:-tap}

# The link header before the IP packet in a captured frame (0 on TUN).
link_header_len() {
    if [[ $USTACK_MEDIUM == tun ]]; then echo 0; else echo 14; fi
}

# start_host VAR NS TAP ADDR HOSTADDR LOG [ARGS...]: starts `ustack serve` on
# TAP in NS (on the TUN device of the same number with USTACK_MEDIUM=tun)
# and waits until it answers ping.
start_host() {
    local var=$1 ns=$2 tap=$3 addr=$4 host=$5 logfile=$6
    shift 6
    local device=(--tap "$tap")
    [[ $USTACK_MEDIUM == tun ]] && device=(--tun "${tap/#tap/tun}")
    # USTACK_SERVE_FLAGS (word-split) is added to every host, so a whole
    # test can run again with, say, --no-offload.
    # shellcheck disable=SC2086
    bg_start "$var" "$logfile" "$ns" "$USTACK_BIN" serve "${device[@]}" \
        --addr "$addr" --host-addr "$host" "$@" ${USTACK_SERVE_FLAGS:-}
    wait_until 10 ip netns exec "$ns" ping -c 1 -W 1 "${addr%/*}" ||
        { cat "$logfile" >&2; die "ustack on ${device[1]} did not come up"; }
}

# check_pcap FILE [strict]: fails if tshark finds a malformed frame or a bad
# IPv4/ICMP/UDP/TCP checksum in FILE (checksum validation on). With
# "strict", any expert warning fails too (TCP captures have legitimate
# warnings: every RST is one).
check_pcap() {
    local file=$1 mode=${2:-}
    [[ -s $file ]] || die "capture $file is missing or empty"
    # A TCP checksum field of 0xffff is valid (one's complement has two
    # zeros, and Linux emits this one now and then) but tshark 4.0 reports
    # it as bad; every other bad checksum counts.
    local filter='_ws.malformed || ip.checksum.status == "Bad" || icmp.checksum.status == "Bad" || udp.checksum.status == "Bad" || (tcp.checksum.status == "Bad" && tcp.checksum != 0xffff)'
    [[ $mode == strict ]] && filter="$filter || _ws.expert.severity >= warning"
    local bad
    bad=$(tshark -r "$file" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \
        -o tcp.check_checksum:TRUE -Y "$filter" 2>/dev/null | head -20)
    if [[ -n $bad ]]; then
        echo "$bad" >&2
        die "tshark flags frames in $file"
    fi
}

# count_frames FILE FILTER: frames in FILE matching the display filter.
count_frames() {
    tshark -r "$1" -Y "$2" 2>/dev/null | wc -l
}

# Where a test keeps its logs and captures.
test_out_dir() {
    local dir="$USTACK_ROOT/target/itest/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    echo "$dir"
}

# The tests speak OpenBSD netcat's dialect (-N, `nc -l PORT`); another nc
# (netcat-traditional, busybox) is replaced by netcat-openbsd.
ensure_openbsd_nc() {
    nc -h 2>&1 | grep -q OpenBSD && return 0
    log "installing netcat-openbsd"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends netcat-openbsd >/dev/null
    nc -h 2>&1 | grep -q OpenBSD || die "nc is not OpenBSD netcat (update-alternatives --config nc)"
}
