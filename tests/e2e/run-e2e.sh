#!/bin/bash
# End-to-end suite: real QEMU guests whose 9p share is served through
# -fsdev proxy by the server under test. Prints TAP on stdout.
#
# Phases (each with a fresh server, all in one export directory, each guest
# working in its own subdirectory, named on the kernel command line):
#   one    one guest, socket=PATH, cache=none
#   fd     one guest, sock_fd=N, server started with -f N on a socket pair
#   loose  one guest, socket=PATH, cache=loose
#   multi  4 guests at once on ONE socket path of ONE server (virtfs-proxyd only)
# Each guest reports one E2E-RESULT line per check on its console; after it
# powers off, e2e-work verify checks what it left on the host.
#
# Environment:
#   SERVER=proxyd|reference     server under test (default proxyd)
#   VIRTFS_PROXYD, REFERENCE_HELPER   their paths (set by make check)
#   E2E_ACCEL=kvm|tcg           skip the KVM trial boot
#   E2E_GUEST_TIMEOUT=SEC       per-guest bound (default 60 under TCG, 30 under KVM)
#   E2E_PHASES="one fd loose multi"   run a subset
#   E2E_KEEP=1                  keep the work directory even when all passed
set -euo pipefail

E2E_DIR=$(cd "$(dirname "$0")" && pwd)
readonly E2E_DIR
readonly SERVER=${SERVER:-proxyd}
readonly MULTI_GUESTS=4

tap_n=0 tap_failed=0
work='' image='' accel='' server_bin='' guest_timeout='' server_pid=''
guest_pids=() server_pids=()

# ---- TAP ------------------------------------------------------------------

# tap STATUS NAME [DETAIL]; STATUS is PASS, FAIL, XFAIL or SKIP.
tap() {
    local status=$1 name=$2 detail=${3:-}
    tap_n=$((tap_n + 1))
    case $status in
        PASS) echo "ok $tap_n - $name" ;;
        XFAIL) echo "not ok $tap_n - $name # TODO $detail" ;;
        SKIP) echo "ok $tap_n - $name # SKIP $detail" ;;
        *) echo "not ok $tap_n - $name"
           [[ -z $detail ]] || echo "# $detail"
           tap_failed=$((tap_failed + 1)) ;;
    esac
}

diag() { sed 's/^/# /' ; }

skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}

# Turns the E2E-RESULT lines of FILE into TAP lines named "TAG: check".
# Returns 1 if any check failed.
tap_results() {
    local tag=$1 file=$2 word name status detail failed=0
    while read -r word name status detail; do
        [[ $word == E2E-RESULT ]] || continue
        [[ $status == PASS || $status == XFAIL ]] || failed=1
        tap "$status" "$tag: $name" "$detail"
    done < <(tr -d '\r' <"$file")
    return $failed
}

show_logs() {
    local f
    for f in "$@"; do
        [[ -s $f ]] || continue
        echo "# ---- $f"
        tr -d '\r' <"$f" | diag
    done
}

# ---- processes --------------------------------------------------------------

cleanup() {
    local pid f
    for pid in "${guest_pids[@]}" "${server_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for f in "$work"/*.server.pid; do
        if [[ -f $f ]]; then
            kill "$(cat "$f")" 2>/dev/null || true
        fi
    done
    wait 2>/dev/null || true
    if [[ -n $work ]]; then
        if [[ $tap_failed -eq 0 && -z ${E2E_KEEP:-} ]]; then
            rm -rf "$work"
        else
            echo "# work directory kept: $work"
        fi
    fi
}

# Waits up to SECS for PID to exit; returns 1 if it is still running.
wait_exit() {
    local pid=$1 secs=$2 i
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    return 1
}

# Identity of the socket file at PATH (empty if absent): a file put back
# after QEMU unlinked it has a new ctime.
sock_id() { stat -c '%i %z' "$1" 2>/dev/null || true; }

# Waits up to SECS for a socket at PATH whose identity differs from OLD,
# while PID (the server) lives.
wait_socket() {
    local path=$1 old=$2 pid=$3 secs=$4 i id
    for ((i = 0; i < secs * 20; i++)); do
        id=$(sock_id "$path")
        [[ -S $path && -n $id && $id != "$old" ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# start_server NAME SOCKET: sets server_pid; fails if no socket appears.
start_server() {
    local name=$1 sock=$2
    "$server_bin" -n -p "$work/export" -s "$sock" -u 0 -g 0 \
        </dev/null >"$work/$name.server.log" 2>&1 &
    server_pid=$!
    server_pids+=("$server_pid")
    wait_socket "$sock" "" "$server_pid" 10
}

# stop_server NAME PID: virtfs-proxyd must exit 0 on SIGTERM; the reference
# helper exits by itself once its one guest is gone.
stop_server() {
    local name=$1 pid=$2 rc=0
    [[ $SERVER == proxyd ]] && kill -TERM "$pid" 2>/dev/null
    if ! wait_exit "$pid" 10; then
        kill -KILL "$pid" 2>/dev/null || true
        tap FAIL "$name: server exits within 10 s"
        return
    fi
    wait "$pid" || rc=$?
    if [[ $rc -eq 0 ]]; then
        tap PASS "$name: server exits 0"
    else
        tap FAIL "$name: server exits 0" "exit status $rc"
        show_logs "$work/$name.server.log"
    fi
}

# boot TAG KERNEL_ARGS BOOT_GUEST_OPTIONS...: starts one guest in the background.
boot() {
    local tag=$1 args=$2
    shift 2
    mkdir -p "$work/export/$tag"
    date +%s.%N >"$work/$tag.start"
    "$E2E_DIR/boot-guest.sh" --image "$image" --accel "$accel" --timeout "$guest_timeout" \
        --log "$work/$tag.log" --append "e2e.dir=$tag $args" "$@" &
    guest_pids+=("$!")
}

# finish_guest TAG PID: waits for the guest, reports its checks and the host-side
# verification of its directory.
finish_guest() {
    local tag=$1 pid=$2 rc=0 log=$work/$1.log ok=1 wall boot_s work_s
    # boot-guest.sh enforces the timeout; poll as well so that one early
    # return of `wait` cannot cut a guest short.
    wait_exit "$pid" $((guest_timeout + 10)) || true
    wait "$pid" || rc=$?
    wall=$(awk -v end="$(date +%s.%N)" '{ print end - $1 }' "$work/$tag.start")
    tap_results "$tag" "$log" || ok=0
    if grep -q '^E2E-DONE' <(tr -d '\r' <"$log"); then
        tap PASS "$tag: guest ran to the end"
        "$image/e2e-work" verify "$work/export/$tag" >"$work/$tag.verify" 2>&1 || true
        tap_results "$tag" "$work/$tag.verify" || ok=0
    else
        [[ $rc -eq 124 ]] && rc="$rc (killed after $guest_timeout s)"
        tap FAIL "$tag: guest ran to the end" "qemu exit status $rc"
        tap SKIP "$tag: host-side verification" "the guest did not finish"
        ok=0
    fi
    [[ $ok -eq 1 ]] || show_logs "$log" "$log.qemu" "$log.server" "$work/$tag.verify"
    boot_s=$(tr -d '\r' <"$log" | awk '$1 == "E2E-TIME" && $2 == "boot" { print $3 }')
    work_s=$(tr -d '\r' <"$log" | awk '$1 == "E2E-TIME" && $2 == "workload" { print $3 }')
    printf '# timing %s: %s boot %ss workload %ss wall %.1fs\n' \
        "$tag" "$accel" "${boot_s:-?}" "${work_s:-?}" "$wall"
}

# ---- phases ---------------------------------------------------------------

# phase_socket NAME CACHE: one guest on a socket path.
phase_socket() {
    local name=$1 cache=$2 sock=$work/$1.sock
    start_server "$name" "$sock" ||
        { tap FAIL "$name: server listens on $sock"; show_logs "$work/$name.server.log"; return; }
    boot "$name" "e2e.cache=$cache" --socket "$sock"
    finish_guest "$name" "${guest_pids[-1]}"
    stop_server "$name" "$server_pid"
}

# phase_fd: the server gets one end of a socket pair (-f 3), QEMU the other.
phase_fd() {
    local pid
    boot fd e2e.cache=none --fd-server "$server_bin" --export "$work/export"
    finish_guest fd "${guest_pids[-1]}"
    pid=$(cat "$work/fd.log.server.pid")
    if wait_exit "$pid" 10; then
        tap PASS "fd: server exits when QEMU closes the socket"
    else
        tap FAIL "fd: server exits when QEMU closes the socket"
        kill "$pid" 2>/dev/null || true
    fi
}

# phase_multi: guests started one after another on the same socket path; each
# waits until the server has put the path back that QEMU unlinked.
phase_multi() {
    local sock=$work/multi.sock i tag old pids=()
    if [[ $SERVER != proxyd ]]; then
        tap SKIP "multi: $MULTI_GUESTS guests on one socket" "the reference helper serves one connection"
        return
    fi
    start_server multi "$sock" ||
        { tap FAIL "multi: server listens on $sock"; show_logs "$work/multi.server.log"; return; }
    for ((i = 1; i <= MULTI_GUESTS; i++)); do
        tag=m$i
        old=$(sock_id "$sock")
        boot "$tag" e2e.cache=none --socket "$sock"
        pids+=("${guest_pids[-1]}")
        if wait_socket "$sock" "$old" "$server_pid" 15; then
            tap PASS "$tag: socket path is back after QEMU connected"
        else
            tap FAIL "$tag: socket path is back after QEMU connected" "server alive: $(kill -0 "$server_pid" 2>/dev/null && echo yes || echo no)"
            break
        fi
    done
    local alive=0 pid
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then alive=$((alive + 1)); fi
    done
    echo "# multi: $alive of ${#pids[@]} guests running at once when the last one started"
    for ((i = 1; i <= ${#pids[@]}; i++)); do
        finish_guest "m$i" "${pids[i - 1]}"
    done
    stop_server multi "$server_pid"
}

# ---- set-up ---------------------------------------------------------------

choose_server() {
    case $SERVER in
        proxyd) server_bin=${VIRTFS_PROXYD:-${TOP_BUILDDIR:-$E2E_DIR/../..}/src/virtfs-proxyd} ;;
        reference) server_bin=${REFERENCE_HELPER:-/usr/lib/qemu/virtfs-proxy-helper} ;;
        *) echo "Bail out! SERVER must be proxyd or reference, not '$SERVER'"; exit 1 ;;
    esac
    [[ -x $server_bin ]] || skip_all "server '$SERVER' not found at '$server_bin'"
}

# KVM only if a trial boot really completes; on some hosts /dev/kvm exists but
# guests hang.
choose_accel() {
    if [[ -n ${E2E_ACCEL:-} ]]; then
        accel=$E2E_ACCEL
    elif [[ -r /dev/kvm && -w /dev/kvm ]] &&
         "$E2E_DIR/boot-guest.sh" --image "$image" --accel kvm --timeout 6 \
             --log "$work/kvm-probe.log" --append e2e.mode=probe 2>/dev/null &&
         grep -q E2E-DONE "$work/kvm-probe.log"; then
        accel=kvm
    else
        accel=tcg
    fi
    if [[ $accel == kvm ]]; then
        guest_timeout=${E2E_GUEST_TIMEOUT:-30}
    else
        guest_timeout=${E2E_GUEST_TIMEOUT:-60}
    fi
    echo "# accelerator: $accel, server: $SERVER ($server_bin), image: $image"
}

main() {
    local rc=0 phase
    [[ $(id -u) -eq 0 ]] || skip_all "needs root (the server changes owners and credentials)"
    choose_server
    image=$("$E2E_DIR/build-image.sh") || rc=$?
    [[ $rc -eq 77 ]] && skip_all "guest image cannot be built here (see the log)"
    [[ $rc -eq 0 ]] || { echo "Bail out! build-image.sh failed with status $rc"; exit 1; }

    work=$(mktemp -d "${TMPDIR:-/tmp}/virtfs-e2e.XXXXXX")
    trap cleanup EXIT
    trap 'exit 1' INT TERM
    mkdir -p "$work/export"
    chmod 0755 "$work" "$work/export"
    choose_accel

    for phase in ${E2E_PHASES:-one fd loose multi}; do
        case $phase in
            one) phase_socket one none ;;
            fd) phase_fd ;;
            loose) phase_socket loose loose ;;
            multi) phase_multi ;;
            *) echo "Bail out! unknown phase $phase"; exit 1 ;;
        esac
    done
    echo "1..$tap_n"
    [[ $tap_failed -eq 0 ]]
}

main "$@"
