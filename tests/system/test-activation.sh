#!/bin/bash
# test-activation.sh - socket activation as systemd does it, through
# systemd-socket-activate (no systemd as PID 1 needed): two sockets named
# after two exports, a real client on each; then what a wrong name, no
# name, a wrong path and a partial set make the daemon do.  TAP output.
set -u
: "${VIRTFS_PROXYD:?}" "${VIRTFS_PROXYCTL:?}" "${VP_PROBE:?}"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

if ! command -v systemd-socket-activate >/dev/null; then
    echo "1..0 # SKIP systemd-socket-activate is not installed (package systemd)"
    exit 0
fi
work=$(mktemp -d /tmp/vp-activate.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/a" "$work/b"
echo a >"$work/a/fa"
echo b >"$work/b/fb"
cat >"$work/conf" <<CONF
[daemon]
control-socket = $work/control.sock
[export alpha]
path = $work/a
socket = $work/a.sock
uid = root
gid = 0
[export beta]
path = $work/b
socket = $work/b.sock
uid = root
gid = 0
CONF
echo "1..10"

# Starts systemd-socket-activate "$@" -- the daemon; $act is its pid (the
# daemon's once it has executed it).
activate() {
    rm -f "$work/a.sock" "$work/b.sock"
    systemd-socket-activate "$@" -- "$VIRTFS_PROXYD" -n -c "$work/conf" \
        >"$work/log" 2>&1 &
    act=$!
    pids+=("$act")
    for _ in $(seq 100); do [ -S "$work/a.sock" ] && break; sleep 0.05; done
}

# Waits (bounded) for $act to exit; its status in $status.
wait_exit() {
    for _ in $(seq 100); do kill -0 "$act" 2>/dev/null || break; sleep 0.05; done
    wait "$act"
    status=$?
}

# 1-4: both exports on systemd's sockets.
activate -l "$work/a.sock" -l "$work/b.sock" --fdname=alpha:beta
check "first client (export alpha) starts the daemon and is served" \
    bash -c "'$VP_PROBE' lstat '$work/a.sock' /fa >/dev/null"
check "a client on export beta's socket is served" \
    bash -c "'$VP_PROBE' lstat '$work/b.sock' /fb >/dev/null"
"$VIRTFS_PROXYCTL" --control "$work/control.sock" status --json >"$work/status" 2>&1
check "status: both sockets are systemd's" \
    bash -c "grep -q '\"name\":\"alpha\",[^}]*\"socket_owner\":\"systemd\"' '$work/status' &&
             grep -q '\"name\":\"beta\",[^}]*\"socket_owner\":\"systemd\"' '$work/status'"
# A live upgrade hands systemd's sockets on like the daemon's own.
"$VIRTFS_PROXYCTL" --control "$work/control.sock" upgrade >"$work/upgrade" 2>&1
new=$(sed -n 's/^upgraded: process \([0-9]*\) .*/\1/p' "$work/upgrade")
pids+=("${new:-0}")
# The process systemd started is the supervisor: it stays, its child changes.
check "virtfs-proxyctl upgrade: process $new takes systemd's sockets over and serves both" \
    bash -c "[ -n '$new' ] && kill -0 '$act' &&
             '$VP_PROBE' lstat '$work/a.sock' /fa >/dev/null &&
             '$VP_PROBE' lstat '$work/b.sock' /fb >/dev/null"
kill -TERM "$act"
wait_exit
for _ in $(seq 100); do kill -0 "${new:-0}" 2>/dev/null || break; sleep 0.05; done
check "SIGTERM: it stops, and systemd's socket files are left to systemd" \
    bash -c "[ $status -eq 0 ] && ! kill -0 '${new:-0}' 2>/dev/null &&
             [ -S '$work/a.sock' ] && [ -S '$work/b.sock' ]"

# 5: a name that is no export.
activate -l "$work/a.sock" -l "$work/b.sock" --fdname=alpha:gamma
"$VP_PROBE" lstat "$work/a.sock" >/dev/null 2>&1
wait_exit
check "a socket named after no export: exit 1, naming it" \
    bash -c "[ $status -ne 0 ] && grep -q \"socket $work/b.sock named 'gamma', but it is the socket of \\[export beta\\]: set FileDescriptorName=beta\" '$work/log'"

# 6: no names at all.
activate -l "$work/a.sock" -l "$work/b.sock"
"$VP_PROBE" lstat "$work/a.sock" >/dev/null 2>&1
wait_exit
check "sockets without names: exit 1, saying to set FileDescriptorName=" \
    bash -c "[ $status -ne 0 ] && grep -q 'socket $work/a.sock without an export.s name.*set FileDescriptorName=alpha' '$work/log'"

# 7: names swapped: each bound to the other export's path.
activate -l "$work/a.sock" -l "$work/b.sock" --fdname=beta:alpha
"$VP_PROBE" lstat "$work/a.sock" >/dev/null 2>&1
wait_exit
check "a socket bound to another path than its export's: exit 1, naming both" \
    bash -c "[ $status -ne 0 ] && grep -q \"socket 'alpha' is bound to $work/b.sock, but \\[export alpha\\] has socket = $work/a.sock\" '$work/log'"

# 8-9: only alpha from systemd: beta gets a socket of the daemon's.
activate -l "$work/a.sock" --fdname=alpha
check "one export from systemd, the other on the daemon's own socket: both served" \
    bash -c "'$VP_PROBE' lstat '$work/a.sock' /fa >/dev/null &&
             '$VP_PROBE' lstat '$work/b.sock' /fb >/dev/null"
kill -TERM "$act"
wait_exit
check "then exit 0: the daemon's socket removed, systemd's kept" \
    bash -c "[ $status -eq 0 ] && [ -S '$work/a.sock' ] && [ ! -e '$work/b.sock' ]"
if [ $failed -ne 0 ]; then
    sed 's/^/# /' "$work/log"
fi
exit $failed
