#!/bin/bash
# End-to-end suite: real QEMU guests whose 9p share is served through
# -fsdev proxy by the server under test. Prints TAP on stdout.
#
# Phases (each with a fresh server, all in one export directory, each guest
# working in its own subdirectory, named on the kernel command line):
#   one    one guest, socket=PATH, cache=none
#   fd     one guest, sock_fd=N, server started with -f N on a socket pair
#   loose  one guest, socket=PATH, cache=loose
#   idmap  one guest, socket=PATH, on an export with uid-map, gid-map and the
#          multi-tenant xattr-map (virtfs-proxyd only): the usual workload
#          (files made as guest uid 0 and 1000, chown, ACL-free xattrs) must
#          pass in the guest, and on the host every id is the guest's + 100000
#   multi  4 guests at once on ONE socket path of ONE server (virtfs-proxyd only)
#   upgrade  live upgrades and reloads under load (virtfs-proxyd only): a server
#          started with -c serves 2 looping guests on one socket (one of them
#          also on a second export), a third guest has its own -f server; both
#          servers are upgraded (SIGUSR2) several times and the -c one reloaded
#          (SIGHUP) while the guests run, a fourth guest joins after the first
#          upgrade, a last upgrade that cannot start must change nothing; no
#          guest may see a single error (the servers run --no-supervisor: the
#          process the test started is the one that upgrades; and so with
#          confine = none, since without a supervisor a reload cannot add an
#          export outside the Landlock confinement: test-sandbox shows that)
#   crash  the serving process killed again and again (virtfs-proxyd only): a
#          supervised server on a socket serves 2 looping guests, a third has
#          its own supervised -f server; both serving processes are killed
#          with SIGKILL every 1-3 s (the first server also upgraded once by
#          SIGUSR2 to its supervisor in the middle): each guest may see at most
#          one EIO per kill of its server and nothing else, its mount keeps
#          working, QEMU prints nothing, the files are what the loop expects
#   service  the installed units (virtfs-proxyd only): make install DESTDIR, the
#          socket unit's socket through systemd-socket-activate, ExecStart as
#          installed, one unprivileged guest, watched with the installed
#          virtfs-proxyctl (status, connections, stats, metrics)
# Each guest reports one E2E-RESULT line per check on its console; after it
# powers off, e2e-work verify (verify-loop) checks what it left on the host.
#
# Environment:
#   SERVER=proxyd|reference     server under test (default proxyd)
#   VIRTFS_PROXYD, REFERENCE_HELPER   their paths (set by make check)
#   E2E_ACCEL=kvm|tcg           skip the KVM trial boot
#   E2E_GUEST_TIMEOUT=SEC       per-guest bound (default 60 under TCG, 30 under KVM)
#   E2E_PHASES="one fd loose idmap multi upgrade service crash"   run a subset
#   E2E_UPGRADE_ROUNDS=N        upgrade: rounds of live upgrades (default 3)
#   E2E_UPGRADE_GAP=SEC         upgrade: seconds between rounds (default 3)
#   E2E_UPGRADE_TIMEOUT=SEC     upgrade: per-guest bound (default 100)
#   E2E_CRASH_KILLS=N           crash: kills of each serving process (default 8)
#   E2E_KEEP=1                  keep the work directory even when all passed
set -euo pipefail

E2E_DIR=$(cd "$(dirname "$0")" && pwd)
readonly E2E_DIR
readonly SERVER=${SERVER:-proxyd}
readonly MULTI_GUESTS=4
readonly UPGRADE_ROUNDS=${E2E_UPGRADE_ROUNDS:-3}
readonly UPGRADE_GAP=${E2E_UPGRADE_GAP:-3}

tap_n=0 tap_failed=0
work='' image='' accel='' server_bin='' guest_timeout='' server_pid=''
guest_pids=() server_pids=()
# upgrade phase, by server name: the pid serving now, its log, its reaper's log
declare -A cur_pid=() server_log=() reap_log=()

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

# One TAP line for a looping guest: its round count and error count, from
# its "E2E-LOOP-END iterations=N errors=M secs=S" line. Returns 1 on errors.
tap_loop() {
    local tag=$1 file=$2 n m secs
    read -r n m secs < <(tr -d '\r' <"$file" | awk '$1 == "E2E-LOOP-END" {
        sub(/.*=/, "", $2); sub(/.*=/, "", $3); sub(/.*=/, "", $4); print $2, $3, $4 }') || true
    if [[ -z ${n:-} ]]; then
        tap FAIL "$tag: workload loop ran to its end" "no E2E-LOOP-END line"
        return 1
    fi
    if [[ $m -eq 0 && $n -gt 0 ]]; then
        tap PASS "$tag: workload loop: $n rounds in $secs s, 0 errors"
        return 0
    fi
    tap FAIL "$tag: workload loop: $n rounds in $secs s, $m errors" \
        "$(tr -d '\r' <"$file" | grep -m 5 '^E2E-LOOP-ERROR' | tr '\n' ';')"
    return 1
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

# start_server NAME SOCKET [OPTIONS...]: sets server_pid; fails if no socket
# appears.
start_server() {
    local name=$1 sock=$2
    shift 2
    "$server_bin" -n -p "$work/export" -s "$sock" -u 0 -g 0 "$@" \
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

# finish_guest TAG PID [E2E_WORK_VERIFY_ARGS...]: waits for the guest, reports
# its checks and the host-side verification of its directory (by default
# `verify EXPORT/TAG`; with verify-loop, also the loop's round count).
finish_guest() {
    local tag=$1 pid=$2 rc=0 log=$work/$1.log ok=1 wall boot_s work_s verify
    shift 2
    verify=("$@")
    [[ ${#verify[@]} -gt 0 ]] || verify=(verify "$work/export/$tag")
    # boot-guest.sh enforces the timeout; poll as well so that one early
    # return of `wait` cannot cut a guest short.
    wait_exit "$pid" $((guest_timeout + 10)) || true
    wait "$pid" || rc=$?
    wall=$(awk -v end="$(date +%s.%N)" '{ print end - $1 }' "$work/$tag.start")
    tap_results "$tag" "$log" || ok=0
    [[ ${verify[0]} != verify-loop ]] || tap_loop "$tag" "$log" || ok=0
    if grep -q '^E2E-DONE' <(tr -d '\r' <"$log"); then
        tap PASS "$tag: guest ran to the end"
        "$image/e2e-work" "${verify[@]}" >"$work/$tag.verify" 2>&1 || true
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

# phase_idmap: one guest on a mapped export; the host checks the mapped ids.
readonly IDMAP_SHIFT=100000
phase_idmap() {
    local sock=$work/idmap.sock
    if [[ $SERVER != proxyd ]]; then
        tap SKIP "idmap: guest on a mapped export" "the reference helper has no id maps"
        return
    fi
    start_server idmap "$sock" --uid-map "0:$IDMAP_SHIFT:65536" --gid-map "0:$IDMAP_SHIFT:65536" \
        --xattr-map "map security. user.virtfs.security.; map trusted. user.virtfs.trusted.; hide user.virtfs.; ok user.; ok system.posix_acl_; refuse *" ||
        { tap FAIL "idmap: server listens on $sock"; show_logs "$work/idmap.server.log"; return; }
    # the guest's directory, made on the host, belongs to the guest's root
    mkdir -p "$work/export/idmap"
    chown "$IDMAP_SHIFT:$IDMAP_SHIFT" "$work/export/idmap"
    boot idmap e2e.cache=none --socket "$sock"
    finish_guest idmap "${guest_pids[-1]}" verify "$work/export/idmap" "$IDMAP_SHIFT"
    stop_server idmap "$server_pid"
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

# ---- live upgrade and reload ----------------------------------------------

# reaper_started LOG: prints the pid e2e-reaper started (waits up to 5 s).
reaper_started() {
    local log=$1 i pid
    for ((i = 0; i < 100; i++)); do
        pid=$(awk '$1 == "start" { print $2; exit }' "$log" 2>/dev/null || true)
        if [[ -n $pid ]]; then
            echo "$pid"
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# reaped LOG PID: how PID ended ("0", "1", "signal 9"); empty while it runs.
reaped() {
    awk -v p="$2" '$1 == "exit" && $2 == p { $1 = $2 = ""; sub(/^ +/, ""); print; exit }' \
        "$1" 2>/dev/null || true
}

# wait_reaped LOG PID SECS: waits for the reaper to record how PID ended.
wait_reaped() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        [[ -z $(reaped "$1" "$2") ]] || return 0
        sleep 0.05
    done
    return 1
}

count_matches() { grep -cE "$2" "$1" 2>/dev/null || true; }

# console TAG: the guest's console so far, without carriage returns.
console() { tr -d '\r' <"$work/$1.log" 2>/dev/null || true; }

# progress_lines TAG: how many "E2E-LOOP n=" lines the guest has printed.
progress_lines() { console "$1" | grep -c '^E2E-LOOP n=' || true; }

# wait_progress TAG SINCE SECS PID: waits until the guest has printed two
# progress lines after its first SINCE ones, the second with more rounds done
# than the first: rounds completed entirely after the moment SINCE was taken.
wait_progress() {
    local tag=$1 since=$2 secs=$3 pid=$4 i first last
    for ((i = 0; i < secs * 10; i++)); do
        read -r first last < <(console "$tag" | awk -v s="$since" '$1 == "E2E-LOOP" &&
            $2 ~ /^n=/ { k++; n = substr($2, 3) + 0; if (k == s + 1) f = n; if (k >= s + 2) l = n }
            END { print (f == "" ? -1 : f), (l == "" ? -1 : l) }')
        [[ $last -gt $first && $first -ge 0 ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_console TAG REGEX SECS PID: waits for a console line matching REGEX.
wait_console() {
    local tag=$1 re=$2 secs=$3 pid=$4 i
    for ((i = 0; i < secs * 10; i++)); do
        console "$tag" | grep -qE "$re" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# listening NAME: true if export NAME's private socket (in $work) accepts a
# connection.
listening() { "$image/e2e-probe" "$work/.virtfs-proxyd.$1.sock/sock"; }

# live_upgrade NAME ROUND: SIGUSR2 to server NAME; follows the new pid from
# the log line the old process writes, checks that the new process runs
# with --takeover and that the old one exits 0. Returns 1 on any failure.
live_upgrade() {
    local name=$1 round=$2 log=${server_log[$1]} old=${cur_pid[$1]} new='' i t0 how
    local ok_re='upgrade: process [0-9]+ serves every socket and connection now; exiting'
    local fail_re='upgrade (failed|abandoned)|SIGUSR2:'
    local n_ok n_fail what="$name: live upgrade $round"
    n_ok=$(count_matches "$log" "$ok_re")
    n_fail=$(count_matches "$log" "$fail_re")
    t0=$(date +%s.%N)
    kill -USR2 "$old"
    # bounded by the server's own limits: 5 s to park, 15 s for the new one
    for ((i = 0; i < 25 * 20; i++)); do
        [[ $(count_matches "$log" "$ok_re") -eq $n_ok ]] || break
        [[ $(count_matches "$log" "$fail_re") -eq $n_fail ]] || break
        kill -0 "$old" 2>/dev/null || break
        sleep 0.05
    done
    # the old process may write the line and exit between two looks
    new=$(grep -oE "$ok_re" "$log" | sed -n "$((n_ok + 1))p" | awk '{ print $3 }')
    if [[ -z $new ]]; then
        tap FAIL "$what: confirmed in the log" "pid $old: no 'serves every socket' line"
        show_logs "$log"
        return 1
    fi
    printf '# %s: pid %s -> %s, confirmed %.2f s after SIGUSR2\n' "$what" "$old" "$new" \
        "$(awk -v t="$t0" -v e="$(date +%s.%N)" 'BEGIN { print e - t }')"
    server_pids+=("$new")
    if [[ $new == "$old" ]] || ! kill -0 "$new" 2>/dev/null ||
       ! tr '\0' ' ' <"/proc/$new/cmdline" 2>/dev/null | grep -q -- '--takeover'; then
        tap FAIL "$what: new process $new runs with --takeover" \
            "cmdline: $(tr '\0' ' ' <"/proc/$new/cmdline" 2>/dev/null || echo gone)"
        return 1
    fi
    cur_pid[$name]=$new
    if ! wait_reaped "${reap_log[$name]}" "$old" 10; then
        tap FAIL "$what: pid $old -> $new, old process exits 0" "pid $old still runs after 10 s"
        return 1
    fi
    how=$(reaped "${reap_log[$name]}" "$old")
    if [[ $how != 0 ]]; then
        tap FAIL "$what: pid $old -> $new, old process exits 0" "exit status $how"
        return 1
    fi
    tap PASS "$what: pid $old -> $new, old process exits 0"
}

# export_conf NAME PATH SOCKET EXTRA_LINE: one [export NAME] group.
export_conf() {
    printf '[export %s]\npath = %s\nsocket = %s\nuid = root\ngid = root\n%s\n' "$@"
}

# upgrade_conf STATE [broken]: writes the -c file of the upgrade phase.
# STATE: rw (exports main and second), ro (second read-only, third added)
# or gone (second removed, main and third). "broken" adds an export whose
# root does not exist: a reload must reject the whole file, and a new
# process started by an upgrade must fail to start.
upgrade_conf() {
    local state=$1 broken=${2:-} file=$work/upgrade.conf
    {
        # No supervisor here: the reloads below add export third, outside the
        # Landlock confinement made at start (virtfs-proxyd(8), SANDBOX).
        # Its own control socket: make check may run another daemon on the
        # default one at the same time.
        printf '[daemon]\nlog-level = info\nconfine = none\ncontrol-socket = %s\n\n' \
            "$work/upgrade-control.sock"
        export_conf main "$work/export" "$work/upgrade.sock" ''
        case $state in
            rw) export_conf second "$work/export2" "$work/second.sock" 'readonly = false' ;;
            ro) export_conf second "$work/export2" "$work/second.sock" 'readonly = true' ;;
        esac
        [[ $state == rw ]] || export_conf third "$work/export3" "$work/third.sock" ''
        [[ -z $broken ]] ||
            export_conf broken "$work/export3/does-not-exist" "$work/broken.sock" ''
    } >"$file.tmp"
    mv "$file.tmp" "$file"
}

# reload STEP U1_PID: SIGHUP to server A after rewriting its file, then the
# checks the host and guest u1 can make. STEP: bad (second read-only and
# third added, but also a broken export: all rejected), ro, gone.
reload() {
    local step=$1 u1_pid=$2 log=${server_log[A]} pid=${cur_pid[A]} n_ok n_bad i what
    n_ok=$(count_matches "$log" 'reloaded ')
    n_bad=$(count_matches "$log" 'reload.* rejected')
    if [[ $step == bad ]]; then upgrade_conf ro broken; else upgrade_conf "$step"; fi
    kill -HUP "$pid"
    for ((i = 0; i < 10 * 20; i++)); do
        [[ $(count_matches "$log" 'reloaded ') -eq $n_ok &&
           $(count_matches "$log" 'reload.* rejected') -eq $n_bad ]] || break
        sleep 0.05
    done
    case $step in
        bad)
            what="upgrade: SIGHUP with an invalid file is rejected, nothing changes"
            sleep 0.5 # a wrongly applied read-only flag would reach u1 by now
            if [[ $(count_matches "$log" 'reload.* rejected') -gt $n_bad ]] &&
               [[ $(count_matches "$log" 'reloaded ') -eq $n_ok ]] &&
               ! listening third &&
               ! console u1 | grep -q '^E2E-LOOP readonly-from'; then
                tap PASS "$what"
            else
                tap FAIL "$what" "reload lines: $(grep -E 'reload' "$log" | tr '\n' ';')"
            fi
            # valid again before the next upgrade reads it
            upgrade_conf rw ;;
        ro)
            what="upgrade: SIGHUP turns export second read-only and adds export third"
            if [[ $(count_matches "$log" 'reloaded ') -gt $n_ok ]] &&
               wait_socket "$work/third.sock" "" "$pid" 10; then
                tap PASS "$what"
            else
                tap FAIL "$what" "reload lines: $(grep -E 'reload|export' "$log" | tr '\n' ';')"
            fi
            what="u1: sees share2 turn read-only (EROFS) after the reload"
            if wait_console u1 '^E2E-LOOP readonly-from' 15 "$u1_pid"; then
                tap PASS "$what"
            else
                tap FAIL "$what" "no readonly-from line within 15 s"
            fi ;;
        gone)
            what="upgrade: SIGHUP removes export second (not listening; u1 keeps its connection)"
            if [[ $(count_matches "$log" 'reloaded ') -gt $n_ok ]] &&
               ! listening second && listening third; then
                tap PASS "$what"
            else
                tap FAIL "$what" "$(ls -la "$work"/.virtfs-proxyd.* 2>&1 | tr '\n' ';')"
            fi ;;
    esac
}

# check_progress ROUND: every looping guest must complete rounds after this
# point. Uses the tags and pids of phase_upgrade.
check_progress() {
    local when=$1 i since=()
    for i in "${!tags[@]}"; do since+=("$(progress_lines "${tags[i]}")"); done
    for i in "${!tags[@]}"; do
        if wait_progress "${tags[i]}" "${since[i]}" 20 "${pids[i]}"; then
            tap PASS "${tags[i]}: still making progress after $when"
        else
            tap FAIL "${tags[i]}: still making progress after $when" \
                "last: $(console "${tags[i]}" | grep '^E2E-LOOP' | tail -n 1)"
            ok=0
        fi
    done
}

# failed_upgrade: SIGUSR2 to server A while its file names a missing export
# root. The new process must fail, and the old one go on serving: its
# guests, and its socket paths for the guests to come.
failed_upgrade() {
    local log=${server_log[A]} pid=${cur_pid[A]} n_fail n_ok i what
    local fail_re='upgrade failed: the new process exited .*still serving'
    n_fail=$(count_matches "$log" "$fail_re")
    n_ok=$(count_matches "$log" 'upgrade: process [0-9]+ serves')
    upgrade_conf gone broken
    kill -USR2 "$pid"
    for ((i = 0; i < 25 * 20; i++)); do
        [[ $(count_matches "$log" "$fail_re") -eq $n_fail ]] || break
        [[ $(count_matches "$log" 'upgrade: process [0-9]+ serves') -eq $n_ok ]] || break
        sleep 0.05
    done
    upgrade_conf gone
    what="A: upgrade that cannot start fails; pid $pid goes on"
    if [[ $(count_matches "$log" "$fail_re") -gt $n_fail ]] && kill -0 "$pid" 2>/dev/null &&
       [[ $(count_matches "$log" 'upgrade: process [0-9]+ serves') -eq $n_ok ]]; then
        tap PASS "$what"
    else
        tap FAIL "$what" "$(grep -E 'upgrade' "$log" | tail -n 3 | tr '\n' ';')"
        ok=0
    fi
    sleep 0.5
    what="A: socket paths survive the failed upgrade (upgrade.sock, third.sock and their private names)"
    if [[ -S $work/upgrade.sock && -S $work/.virtfs-proxyd.upgrade.sock/sock &&
          -S $work/third.sock && -S $work/.virtfs-proxyd.third.sock/sock ]]; then
        tap PASS "$what"
    else
        tap FAIL "$what" "left: $(cd "$work" && find . -maxdepth 2 -name '*sock*' | sort | tr '\n' ' ')"
        grep -E 'upgrade|socket' "$log" | tail -n 6 | diag
        ok=0
    fi
    check_progress "the failed upgrade"
}

# phase_upgrade: see the top of this file. Server A (-c; guests u1 and u2 on
# one socket, u1 also on export second) and server B (-f; guest u3) are
# upgraded UPGRADE_ROUNDS times. Before rounds 1-3, A is reloaded: with an
# invalid file, turning second read-only and adding third, removing second
# (u1's connection to it must survive the upgrade that follows). Guest u4
# connects after round 1, through the socket the new process took over. At
# the end, an upgrade of A that cannot start must leave A serving. Every step
# is bounded; the guests stop when the host creates their stop file, and by
# themselves after their time limit anyway.
phase_upgrade() {
    local guest_timeout=${E2E_UPGRADE_TIMEOUT:-100}
    local sock=$work/upgrade.sock sock2=$work/second.sock
    local loop_args i r ok=1 old old2 pid reaper_a steps=(bad ro gone)
    local -a tags=(u1 u2 u3) pids=()
    if [[ $SERVER != proxyd ]]; then
        tap SKIP "upgrade: live upgrade and reload" "the reference helper has neither"
        return
    fi
    loop_args="e2e.mode=loop e2e.cache=none e2e.secs=$((guest_timeout - 20))"
    mkdir -p "$work/export2/u1" "$work/export3"
    upgrade_conf rw
    server_log[A]=$work/upgrade.server.log reap_log[A]=$work/upgrade.reap
    "$image/e2e-reaper" "${reap_log[A]}" "$server_bin" -n --no-supervisor -c "$work/upgrade.conf" \
        </dev/null >"${server_log[A]}" 2>&1 &
    reaper_a=$!
    server_pids+=("$reaper_a")
    if ! cur_pid[A]=$(reaper_started "${reap_log[A]}") ||
       ! wait_socket "$sock" "" "${cur_pid[A]}" 10 || ! wait_socket "$sock2" "" "${cur_pid[A]}" 10; then
        tap FAIL "upgrade: server -c listens on $sock and $sock2"
        show_logs "${server_log[A]}"
        return
    fi
    server_pids+=("${cur_pid[A]}")

    # u1 on both exports of A, u2 on main, u3 on its own -f server B.
    old=$(sock_id "$sock") old2=$(sock_id "$sock2")
    boot u1 "$loop_args e2e.share2=1" --socket "$sock" --socket2 "$sock2"
    pids+=("${guest_pids[-1]}")
    if ! wait_socket "$sock" "$old" "${cur_pid[A]}" 15 ||
       ! wait_socket "$sock2" "$old2" "${cur_pid[A]}" 15; then
        tap FAIL "u1: socket paths are back after QEMU connected"
        ok=0
    fi
    old=$(sock_id "$sock")
    boot u2 "$loop_args" --socket "$sock"
    pids+=("${guest_pids[-1]}")
    wait_socket "$sock" "$old" "${cur_pid[A]}" 15 ||
        { tap FAIL "u2: socket path is back after QEMU connected"; ok=0; }
    server_log[B]=$work/u3.log.server reap_log[B]=$work/u3.reap
    boot u3 "$loop_args" --fd-server "$server_bin" --export "$work/export" --reap-log "${reap_log[B]}" \
        --server-arg --no-supervisor
    pids+=("${guest_pids[-1]}")
    if cur_pid[B]=$(reaper_started "${reap_log[B]}"); then
        server_pids+=("${cur_pid[B]}")
    else
        tap FAIL "u3: server -f started"
        ok=0
    fi
    for i in "${!tags[@]}"; do
        if [[ $ok -eq 1 ]] && ! wait_console "${tags[i]}" '^E2E-LOOP started' 60 "${pids[i]}"; then
            tap FAIL "${tags[i]}: workload loop started"
            ok=0
        fi
    done

    for ((r = 1; r <= UPGRADE_ROUNDS && ok == 1; r++)); do
        sleep "$UPGRADE_GAP"
        [[ $r -gt ${#steps[@]} ]] || reload "${steps[r - 1]}" "${pids[0]}"
        live_upgrade A "$r" || ok=0
        live_upgrade B "$r" || ok=0
        [[ $ok -eq 1 ]] || break
        check_progress "upgrade round $r"
        if [[ $r -eq 1 && $ok -eq 1 ]]; then
            old=$(sock_id "$sock")
            boot u4 "$loop_args" --socket "$sock"
            tags+=(u4)
            pids+=("${guest_pids[-1]}")
            if wait_socket "$sock" "$old" "${cur_pid[A]}" 15 &&
               wait_console u4 '^E2E-LOOP started' 60 "${pids[-1]}"; then
                tap PASS "u4: connects to the upgraded server through the socket it took over"
            else
                tap FAIL "u4: connects to the upgraded server through the socket it took over"
                ok=0
            fi
        fi
    done
    [[ $ok -eq 0 ]] || failed_upgrade
    sleep "$UPGRADE_GAP"

    # Stop the loops, collect the guests, then the servers.
    for i in "${!tags[@]}"; do
        touch "$work/export/${tags[i]}/stop"
    done
    for i in "${!tags[@]}"; do
        if [[ ${tags[i]} == u1 ]]; then
            finish_guest u1 "${pids[i]}" verify-loop "$work/export/u1" "$work/export2/u1"
        else
            finish_guest "${tags[i]}" "${pids[i]}" verify-loop "$work/export/${tags[i]}"
        fi
    done
    for i in "${!tags[@]}"; do
        if [[ -s $work/${tags[i]}.log.qemu ]]; then
            tap FAIL "${tags[i]}: QEMU reported nothing on stderr" \
                "$(head -c 500 "$work/${tags[i]}.log.qemu")"
            ok=0
        else
            tap PASS "${tags[i]}: QEMU reported nothing on stderr"
        fi
    done

    pid=${cur_pid[A]}
    kill -TERM "$pid" 2>/dev/null || true
    if wait_reaped "${reap_log[A]}" "$pid" 10 && [[ $(reaped "${reap_log[A]}" "$pid") == 0 ]]; then
        tap PASS "upgrade: final server -c (pid $pid) exits 0 on SIGTERM"
    else
        tap FAIL "upgrade: final server -c (pid $pid) exits 0 on SIGTERM" \
            "$(reaped "${reap_log[A]}" "$pid")"
        kill -KILL "$pid" 2>/dev/null || true
        ok=0
    fi
    if [[ -n ${cur_pid[B]:-} ]]; then
        pid=${cur_pid[B]}
        if wait_reaped "${reap_log[B]}" "$pid" 10 && [[ $(reaped "${reap_log[B]}" "$pid") == 0 ]]; then
            tap PASS "upgrade: final server -f (pid $pid) exits 0 when QEMU closes the socket"
        else
            tap FAIL "upgrade: final server -f (pid $pid) exits 0 when QEMU closes the socket" \
                "$(reaped "${reap_log[B]}" "$pid")"
            kill -KILL "$pid" 2>/dev/null || true
            ok=0
        fi
    fi
    wait_exit "$reaper_a" 5 || kill "$reaper_a" 2>/dev/null || true
    wait "$reaper_a" 2>/dev/null || true

    # Only what the phase provoked may be logged as an error or a warning.
    old=$(cat "${server_log[A]}" "${server_log[B]}" 2>/dev/null | grep -E ': (error|warning): ' |
          grep -vE 'reload.* rejected|/does-not-exist: |upgrade failed: the new process exited|descriptor limit' || true)
    if [[ -z $old ]]; then
        tap PASS "upgrade: no error or warning in the server logs but those provoked"
    else
        tap FAIL "upgrade: no error or warning in the server logs but those provoked" \
            "$(head -n 5 <<<"$old" | tr '\n' ';')"
        ok=0
    fi
    if [[ $ok -eq 1 ]]; then
        for i in A B; do
            printf '# upgrade: server %s, upgrades and reloads:\n' "$i"
            grep -E 'upgrade: (starting|took|process)|upgrade failed|reload|export .*(read|removed)' \
                "${server_log[$i]}" | diag || true
        done
    else
        show_logs "${server_log[A]}" "${server_log[B]}" "${reap_log[A]}" "${reap_log[B]}"
    fi
}

# ---- the installed units: socket activation, watched with virtfs-proxyctl ----

# unit_key UNIT KEY: the value of the last KEY= line of UNIT.
unit_key() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# svc_ctl ARGS...: the installed virtfs-proxyctl on the phase's control socket,
# in the phase's namespace (uses svc_ns, sbindir and svc of phase_service).
svc_ctl() { "${svc_ns[@]}" no "$sbindir/virtfs-proxyctl" -t 5 --control "$svc/control.sock" "$@"; }

# svc_counts FILE KIND: "TYPE COUNT" per request type of export $fdname in
# the output of stats (KIND text), stats --json (json) or metrics (metrics).
svc_counts() {
    case $2 in
        text) awk -v e="$fdname" '$1 == "export" { on = ($2 == e); next }
                  on && $1 != "TYPE" && $2 ~ /^[0-9]+$/ { print $1, $2 }' "$1" ;;
        json) grep -oE '"type":"[a-z]+","requests":[0-9]+' "$1" |
                  sed -E 's/"type":"([a-z]+)","requests":/\1 /' ;;
        metrics) sed -nE "s/^virtfs_proxyd_requests_total\\{export=\"$fdname\",type=\"([a-z]+)\"\\} ([0-9]+)$/\\1 \\2/p" "$1" ;;
    esac | sort
}

# svc_abort PID...: ends these processes (a guest, the daemon) now.
svc_abort() {
    local pid
    kill "$@" 2>/dev/null || true
    for pid in "$@"; do wait_exit "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true; done
    wait "$@" 2>/dev/null || true
}

# phase_service: what an operator does on a fresh machine, with a real
# guest. `make install` into a DESTDIR; from the installed
# virtfs-proxyd.socket its ListenStream= and FileDescriptorName=, from the
# service it names its ExecStart=; a private configuration at the path
# ExecStart reads, with the export of that name on that socket and a
# private control socket. systemd-socket-activate listens as systemd would
# (the socket given the unit's SocketUser=, SocketGroup=, SocketMode= and
# DirectoryMode=) and starts ExecStart verbatim (with the unit's LimitNOFILE=, CapabilityBoundingSet=,
# NoNewPrivileges=, PrivateNetwork= and ProtectSystem=full) when the guest's
# QEMU connects. QEMU runs unprivileged in the socket's group, as libvirt
# runs it, with -name guest=NAME; its guest loops over the common
# operations while the host watches it with the installed virtfs-proxyctl.
# Everything runs in private mount namespaces (an empty /run holding the
# socket directory; the installed programs and the configuration overlaid
# read-only on sbindir and sysconfdir): nothing of the machine changes.
phase_service() {
    local svc=$work/service tag=service vm=e2e-service-vm qemu_uid=65534
    local dest sock_unit svc_unit execstart listen fdname conf sock group gid cmd
    local dpid gpid qpid old acc=$accel rc=0 t0 caps bset nofile ok what kind
    local -a argv nnp=() senv=() types=(lstat open create mkdir symlink link readlink statfs
        chmod rename remove lsetxattr lgetxattr)
    local sbindir svc_ns i
    t0=$(date +%s.%N)
    if [[ $SERVER != proxyd ]]; then
        tap SKIP "service: socket unit and virtfs-proxyctl" "virtfs-proxyd only"
        return
    fi
    for cmd in systemd-socket-activate unshare setpriv prlimit make; do
        command -v "$cmd" >/dev/null ||
            { tap SKIP "service: socket unit and virtfs-proxyctl" "no $cmd here"; return; }
    done
    mkdir -p "$svc/etc" "$svc/run" "$svc/img"
    dest=$svc/dest
    if make -s -C "${TOP_BUILDDIR:-$E2E_DIR/../..}" install DESTDIR="$dest" \
        >"$svc/install.log" 2>&1; then
        tap PASS "service: make install DESTDIR"
    else
        tap FAIL "service: make install DESTDIR"
        show_logs "$svc/install.log"
        return
    fi
    sock_unit=$(find "$dest" -type f -name virtfs-proxyd.socket | head -n 1)
    if [[ -z $sock_unit ]]; then
        tap SKIP "service: socket unit and virtfs-proxyctl" "no units installed (no systemd unit directory)"
        return
    fi
    listen=$(unit_key "$sock_unit" ListenStream) fdname=$(unit_key "$sock_unit" FileDescriptorName)
    svc_unit=$(dirname "$sock_unit")/$(unit_key "$sock_unit" Service)
    execstart=$(unit_key "$svc_unit" ExecStart)
    read -ra argv <<<"$execstart"
    for ((i = 1; i < ${#argv[@]}; i++)); do [[ ${argv[i - 1]} != -c ]] || conf=${argv[i]}; done
    sbindir=$(dirname "${argv[0]:-/}")
    sock=$svc/run/${listen##*/}
    what="service: installed units: ListenStream=$listen FileDescriptorName=$fdname, ExecStart=$execstart"
    if [[ $listen == /run/*/* && -n $fdname && -x $dest${argv[0]:-/none} && -n ${conf:-} &&
          -x $dest$sbindir/virtfs-proxyctl ]]; then
        tap PASS "$what"
    else
        tap FAIL "$what" "want a socket under /run, a name, an installed program given -c FILE"
        return
    fi
    if [[ ! -d $sbindir || ! -d $(dirname "$conf") ]]; then
        tap SKIP "service: socket unit and virtfs-proxyctl" "$sbindir or $(dirname "$conf") is missing here (mount points)"
        return
    fi

    # The namespace: svc_ns PROTECT CMD... (PROTECT yes: the service's own).
    cat >"$svc/ns.sh" <<'NS'
set -e
rundir=$1 runsrc=$2 dsbin=$3 sbin=$4 etc=$5 sysconf=$6 protect=$7
shift 7
overlay() { mount -t overlay overlay -o "lowerdir=$1:$2" "$2" 2>/dev/null || mount --bind "$1" "$2"; }
if [ "$protect" = yes ]; then # ProtectSystem=full
    for d in /usr /boot /etc; do
        if [ -d "$d" ]; then mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; fi
    done
fi
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p "$rundir"
mount --bind "$runsrc" "$rundir"
overlay "$dsbin" "$sbin"
overlay "$etc" "$sysconf"
exec "$@"
NS
    svc_ns=(unshare -m --propagation private bash "$svc/ns.sh" "$(dirname "$listen")" "$svc/run"
            "$dest$sbindir" "$sbindir" "$svc/etc" "$(dirname "$conf")")
    if ! "${svc_ns[@]}" yes unshare -n true 2>"$svc/ns.log"; then
        tap SKIP "service: socket unit and virtfs-proxyctl" "no private mount and network namespace here: $(head -c 200 "$svc/ns.log")"
        return
    fi

    # The socket unit's owner and mode; a stand-in gid if its group is absent.
    group=$(unit_key "$sock_unit" SocketGroup)
    gid=$(getent group "${group:-root}" | cut -d: -f3) || true
    if [[ -z $gid ]]; then
        for ((gid = 64990; gid < 65000; gid++)); do getent group "$gid" >/dev/null || break; done
        echo "# service: group $group does not exist here; gid $gid stands in for it"
        group=$gid
    fi
    cat >"$svc/etc/${conf##*/}" <<CONF
[daemon]
control-socket = $svc/control.sock

[export $fdname]
path = $work/export
socket = $listen
uid = $(unit_key "$sock_unit" SocketUser)
gid = $group
CONF
    chmod "$(unit_key "$sock_unit" DirectoryMode)" "$svc/run"

    # systemd's part: listen, then on the first connection start ExecStart
    # with the service's limits.
    caps=$(unit_key "$svc_unit" CapabilityBoundingSet) bset=-all
    for cmd in ${caps,,}; do bset+=,+${cmd#cap_}; done
    [[ $(unit_key "$svc_unit" NoNewPrivileges) != yes ]] || nnp=(--no-new-privs)
    nofile=$(unit_key "$svc_unit" LimitNOFILE)
    # systemd-socket-activate passes on only PATH, TERM, USER and HOME: keep
    # a sanitizer build's settings (ci-sanitizers.sh).
    for cmd in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS; do
        [[ -z ${!cmd:-} ]] || senv+=(-E "$cmd")
    done
    if ! prlimit --nofile="${nofile:=1024}" true 2>/dev/null; then
        echo "# service: LimitNOFILE=$nofile cannot be set here (no CAP_SYS_RESOURCE): $(ulimit -Hn)"
        nofile=$(ulimit -Hn)
    fi
    "${svc_ns[@]}" yes unshare -n systemd-socket-activate -l "$listen" --fdname="$fdname" "${senv[@]}" -- \
        prlimit --nofile="$nofile" setpriv --bounding-set="$bset" "${nnp[@]}" "${argv[@]}" \
        </dev/null >"$svc/daemon.log" 2>&1 &
    dpid=$!
    server_pids+=("$dpid")
    if ! wait_socket "$sock" "" "$dpid" 10; then
        tap FAIL "service: systemd-socket-activate listens on $listen"
        show_logs "$svc/daemon.log"
        svc_abort "$dpid"
        return
    fi
    chown "$(unit_key "$sock_unit" SocketUser):$gid" "$sock"
    chmod "$(unit_key "$sock_unit" SocketMode)" "$sock"
    old=$(sock_id "$sock")

    # The guest: QEMU as an unprivileged user in the socket's group, which
    # cannot read the image cache: the kernel and initramfs are linked here.
    for cmd in kernel initramfs.img; do
        ln -f "$(readlink -f "$image/$cmd")" "$svc/img/$cmd" 2>/dev/null ||
            cp "$(readlink -f "$image/$cmd")" "$svc/img/$cmd"
    done
    if [[ $acc == kvm ]] && ! setpriv --reuid=$qemu_uid --regid="$gid" --clear-groups \
        test -r /dev/kvm -a -w /dev/kvm; then
        acc=tcg
        echo "# service: uid $qemu_uid cannot use /dev/kvm: this guest runs under TCG"
    fi
    mkdir -p "$work/export/$tag"
    : >"$work/$tag.log"
    date +%s.%N >"$work/$tag.start"
    "${svc_ns[@]}" no "$E2E_DIR/boot-guest.sh" --image "$svc/img" --accel "$acc" \
        --timeout "$guest_timeout" --log "$work/$tag.log" --socket "$listen" --name "$vm" \
        --user "$qemu_uid:$gid" \
        --append "e2e.dir=$tag e2e.mode=loop e2e.cache=none e2e.secs=$((guest_timeout - 10))" &
    gpid=$!
    guest_pids+=("$gpid")
    ok=1
    wait_console "$tag" '^E2E-LOOP n=' "$guest_timeout" "$gpid" || ok=0
    qpid=$(cat "/proc/$gpid/task/$gpid/children" 2>/dev/null || pgrep -P "$gpid" || true)
    qpid=${qpid%% *}
    if [[ $ok -eq 1 && -n $qpid && $(cat "/proc/$qpid/comm" 2>/dev/null) == qemu-system-* ]]; then
        tap PASS "service: guest (QEMU pid $qpid, uid $qemu_uid) attached and looping"
    else
        tap FAIL "service: guest (QEMU pid ${qpid:-?}, uid $qemu_uid) attached and looping"
        show_logs "$work/$tag.log" "$work/$tag.log.qemu" "$svc/daemon.log"
        svc_abort "$gpid" "$dpid"
        return
    fi

    # While the guest runs: the daemon systemd started, its socket, who is connected.
    svc_ctl status --json >"$svc/status.json" 2>&1 || true
    what="service: status: supervisor pid $dpid (systemd's main pid), export $fdname on systemd's $listen"
    if grep -q "\"supervisor\":true,\"supervisor_pid\":$dpid," "$svc/status.json" &&
       grep -q "{\"name\":\"$fdname\",[^}]*\"socket\":\"$listen\",\"socket_owner\":\"systemd\",\"connections\":1}" \
           "$svc/status.json"; then
        tap PASS "$what"
    else
        tap FAIL "$what" "$(head -c 600 "$svc/status.json")"
    fi
    what="service: QEMU (unprivileged) could not unlink systemd's socket path: $listen stays"
    if [[ -S $sock && $(sock_id "$sock") == "$old" ]]; then tap PASS "$what"; else tap FAIL "$what"; fi
    svc_ctl connections >"$svc/connections.txt" 2>&1 || true
    svc_ctl connections --json >"$svc/connections.json" 2>&1 || true
    what="service: connections lists export $fdname, QEMU pid $qpid, uid $qemu_uid, VM $vm (text and --json)"
    if awk -v e="$fdname" -v p="$qpid" -v u="$qemu_uid" -v v="$vm" \
           '$1 == e && $2 == p && $3 == u && $4 == v && $5 > 0 { f = 1 } END { exit !f }' \
           "$svc/connections.txt" &&
       grep -qE "^\{\"connections\":\[\{\"export\":\"$fdname\",\"peer_pid\":$qpid,\"peer_uid\":$qemu_uid,\"vm\":\"$vm\",\"requests\":[1-9]" \
           "$svc/connections.json"; then
        tap PASS "$what"
    else
        tap FAIL "$what" "$(cat "$svc/connections.txt" "$svc/connections.json" | tr '\n' ';')"
    fi

    # Stop the loop; then the figures of the whole run.
    touch "$work/export/$tag/stop"
    finish_guest "$tag" "$gpid" verify-loop "$work/export/$tag"
    if [[ -s $work/$tag.log.qemu ]]; then
        tap FAIL "service: QEMU reported nothing on stderr" "$(head -c 500 "$work/$tag.log.qemu")"
    else
        tap PASS "service: QEMU reported nothing on stderr"
    fi
    for ((i = 0; i < 100; i++)); do # the daemon has seen QEMU go
        ! grep -q "peer pid $qpid disconnected" "$svc/daemon.log" || break
        sleep 0.05
    done
    svc_ctl stats >"$svc/stats.txt" 2>&1 || true
    svc_ctl stats --json >"$svc/stats.json" 2>&1 || true
    svc_ctl metrics >"$svc/metrics.txt" 2>&1 || true
    for kind in text json metrics; do
        case $kind in text) cmd=$svc/stats.txt ;; json) cmd=$svc/stats.json ;; *) cmd=$svc/metrics.txt ;; esac
        svc_counts "$cmd" "$kind" >"$svc/counts.$kind"
    done
    what="service: stats, stats --json and metrics: the same non-zero counts for ${types[*]},"
    what+=" adding up to the requests the daemon logged for the guest's connection"
    old=$(sed -nE "s/.*peer pid $qpid disconnected after ([0-9]+) requests.*/\1/p" "$svc/daemon.log")
    ok=1
    [[ -n $old && $(awk '{ n += $2 } END { print n + 0 }' "$svc/counts.text") == "$old" ]] || ok=0
    for cmd in "${types[@]}"; do
        awk -v t="$cmd" '$1 == t && $2 > 0 { f = 1 } END { exit !f }' "$svc/counts.text" || ok=0
    done
    if [[ $ok -eq 1 ]] && cmp -s "$svc/counts.text" "$svc/counts.json" &&
       cmp -s "$svc/counts.text" "$svc/counts.metrics"; then
        tap PASS "$what"
        echo "# service: requests of export $fdname: $(tr '\n' ' ' <"$svc/counts.text")"
    else
        tap FAIL "$what" "logged: ${old:-none}; text: $(tr '\n' ' ' <"$svc/counts.text"); json: $(tr '\n' ' ' <"$svc/counts.json"); metrics: $(tr '\n' ' ' <"$svc/counts.metrics")"
        show_logs "$svc/stats.txt"
    fi
    svc_ctl connections >"$svc/connections.after" 2>&1 || true
    what="service: after the guest left: no connection, gauge virtfs_proxyd_connections{export=\"$fdname\"} 0"
    if grep -qx '(no connections)' "$svc/connections.after" &&
       grep -qx "virtfs_proxyd_connections{export=\"$fdname\"} 0" "$svc/metrics.txt"; then
        tap PASS "$what"
    else
        tap FAIL "$what" "$(tr '\n' ';' <"$svc/connections.after")"
    fi

    # SIGTERM, as systemctl stop: exit 0; systemd's socket stays, the control socket goes.
    kill -TERM "$dpid" 2>/dev/null || true
    wait_exit "$dpid" 10 || kill -KILL "$dpid" 2>/dev/null || true
    wait "$dpid" || rc=$?
    what="service: SIGTERM: exit 0, systemd's socket left to systemd, control socket removed"
    if [[ $rc -eq 0 && -S $sock && ! -e $svc/control.sock ]]; then
        tap PASS "$what"
    else
        tap FAIL "$what" "exit status $rc"
    fi
    old=$(grep -E ': (error|warning): ' "$svc/daemon.log" || true)
    if [[ -z $old ]]; then
        tap PASS "service: no error or warning in the daemon's log"
    else
        tap FAIL "service: no error or warning in the daemon's log" "$(head -n 5 <<<"$old" | tr '\n' ';')"
        show_logs "$svc/daemon.log"
    fi
    printf '# timing service phase: %.1fs in all (make install included)\n' \
        "$(awk -v t="$t0" -v e="$(date +%s.%N)" 'BEGIN { print e - t }')"
}

# ---- crash: the serving process killed under load ----------------------------

# serving_pid SUPERVISOR: the supervisor's child that serves (empty if none).
serving_pid() { pgrep -P "$1" 2>/dev/null | head -n 1 || true; }

# kill_serving NAME SUPERVISOR: SIGKILL to its serving process; waits (10 s)
# for the next one. Returns 1 if none came.
kill_serving() {
    local name=$1 sup=$2 old new i
    old=$(serving_pid "$sup")
    [[ -n $old ]] || return 1
    kill -KILL "$old"
    for ((i = 0; i < 200; i++)); do
        new=$(serving_pid "$sup")
        [[ -n $new && $new != "$old" ]] && return 0
        sleep 0.05
    done
    return 1
}

# eios_of TAG: the EIOs the looping guest counted.
eios_of() {
    console "$1" | awk '$1 == "E2E-LOOP-END" { for (i = 2; i <= NF; i++)
        if ($i ~ /^eios=/) { sub(/^eios=/, "", $i); print $i } }'
}

# phase_crash: see the top of this file.
phase_crash() {
    local guest_timeout=${E2E_UPGRADE_TIMEOUT:-100} kills=${E2E_CRASH_KILLS:-8}
    local sock=$work/crash.sock conf=$work/crash.conf loop_args sup_c sup_k3 r i ok=1 old
    local -a tags=(k1 k2 k3) pids=()
    local -A killed=([C]=0 [K3]=0)
    if [[ $SERVER != proxyd ]]; then
        tap SKIP "crash: the serving process killed under load" "the reference helper has no supervisor"
        return
    fi
    loop_args="e2e.mode=loop e2e.cache=none e2e.eio=1 e2e.secs=$((guest_timeout - 20))"
    { printf '[daemon]\nlog-level = info\ncontrol-socket = %s\n\n' "$work/crash-control.sock"
      export_conf main "$work/export" "$sock" ''; } >"$conf"
    "$server_bin" -n -c "$conf" </dev/null >"$work/crash.server.log" 2>&1 &
    sup_c=$!
    server_pids+=("$sup_c")
    if ! wait_socket "$sock" "" "$sup_c" 10; then
        tap FAIL "crash: supervised server listens on $sock"
        show_logs "$work/crash.server.log"
        return
    fi
    old=$(sock_id "$sock")
    boot k1 "$loop_args" --socket "$sock"
    pids+=("${guest_pids[-1]}")
    wait_socket "$sock" "$old" "$sup_c" 15 || { tap FAIL "k1: socket path is back"; ok=0; }
    boot k2 "$loop_args" --socket "$sock"
    pids+=("${guest_pids[-1]}")
    boot k3 "$loop_args" --fd-server "$server_bin" --export "$work/export"
    pids+=("${guest_pids[-1]}")
    for ((i = 0; i < 50; i++)); do
        sup_k3=$(cat "$work/k3.log.server.pid" 2>/dev/null || true)
        [[ -z $sup_k3 ]] || break
        sleep 0.1
    done
    [[ -n $sup_k3 ]] && server_pids+=("$sup_k3") || { tap FAIL "k3: server -f started"; ok=0; }
    for i in "${!tags[@]}"; do
        if [[ $ok -eq 1 ]] && ! wait_console "${tags[i]}" '^E2E-LOOP started' 60 "${pids[i]}"; then
            tap FAIL "${tags[i]}: workload loop started"
            ok=0
        fi
    done

    for ((r = 1; r <= kills && ok == 1; r++)); do
        sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 1 + 2 * rand() }')"
        if kill_serving C "$sup_c"; then
            killed[C]=$((killed[C] + 1))
        else
            tap FAIL "crash: kill $r: a new serving process for the socket server"; ok=0
        fi
        if kill_serving K3 "$sup_k3"; then
            killed[K3]=$((killed[K3] + 1))
        else
            tap FAIL "crash: kill $r: a new serving process for k3's -f server"; ok=0
        fi
        if [[ $r -eq $(((kills + 1) / 2)) && $ok -eq 1 ]]; then
            # A live upgrade through the supervisor, between two kills.
            local n_up before
            n_up=$(count_matches "$work/crash.server.log" 'serves every socket and connection now')
            before=$(serving_pid "$sup_c")
            kill -USR2 "$sup_c"
            for ((i = 0; i < 400; i++)); do
                [[ $(count_matches "$work/crash.server.log" 'serves every socket and connection now') -eq $n_up ]] || break
                sleep 0.05
            done
            sleep 0.3
            if [[ $(count_matches "$work/crash.server.log" 'serves every socket and connection now') -gt $n_up &&
                  -n $(serving_pid "$sup_c") && $(serving_pid "$sup_c") != "$before" ]]; then
                tap PASS "crash: live upgrade through the supervisor (serving pid $before -> $(serving_pid "$sup_c"))"
            else
                tap FAIL "crash: live upgrade through the supervisor" \
                    "$(grep -E 'upgrade|supervisor' "$work/crash.server.log" | tail -n 3 | tr '\n' ';')"
                ok=0
            fi
        fi
    done
    echo "# crash: ${killed[C]} kills of the socket server's serving process, ${killed[K3]} of k3's"
    [[ $ok -eq 0 ]] || check_progress "the last kill"

    for i in "${!tags[@]}"; do
        touch "$work/export/${tags[i]}/stop"
    done
    for i in "${!tags[@]}"; do
        finish_guest "${tags[i]}" "${pids[i]}" verify-loop "$work/export/${tags[i]}"
    done
    for i in "${!tags[@]}"; do
        local tag=${tags[i]} eios limit
        eios=$(eios_of "$tag")
        limit=${killed[C]}
        [[ $tag != k3 ]] || limit=${killed[K3]}
        if [[ -n $eios && $eios -le $limit ]]; then
            tap PASS "$tag: $eios EIO for $limit kills of its serving process"
        else
            tap FAIL "$tag: at most one EIO per kill" "${eios:-no count} EIO for $limit kills"
            ok=0
        fi
        if [[ -s $work/$tag.log.qemu ]]; then
            tap FAIL "$tag: QEMU reported nothing on stderr" "$(head -c 500 "$work/$tag.log.qemu")"
            ok=0
        else
            tap PASS "$tag: QEMU reported nothing on stderr"
        fi
    done
    kill -TERM "$sup_c" 2>/dev/null || true
    if wait_exit "$sup_c" 15 && wait "$sup_c"; then
        tap PASS "crash: supervisor exits 0 on SIGTERM"
    else
        tap FAIL "crash: supervisor exits 0 on SIGTERM"
        kill -KILL "$sup_c" 2>/dev/null || true
        ok=0
    fi
    if [[ -n $sup_k3 ]]; then
        if wait_exit "$sup_k3" 10; then
            tap PASS "crash: k3's supervisor exits when QEMU closes the socket"
        else
            tap FAIL "crash: k3's supervisor exits when QEMU closes the socket"
            kill -KILL "$sup_k3" 2>/dev/null || true
            ok=0
        fi
    fi
    old=$(cat "$work/crash.server.log" "$work/k3.log.server" 2>/dev/null | grep -E ': (error|warning): ' |
          grep -vE 'serving process [0-9]+ died of signal 9|descriptor limit' || true)
    if [[ -z $old ]]; then
        tap PASS "crash: no error or warning in the server logs but the kills"
    else
        tap FAIL "crash: no error or warning in the server logs but the kills" \
            "$(head -n 5 <<<"$old" | tr '\n' ';')"
        ok=0
    fi
    if [[ $ok -eq 1 ]]; then
        grep -E 'supervisor|EIO' "$work/crash.server.log" "$work/k3.log.server" | diag || true
    else
        show_logs "$work/crash.server.log" "$work/k3.log.server"
    fi
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

    for phase in ${E2E_PHASES:-one fd loose idmap multi upgrade service crash}; do
        case $phase in
            one) phase_socket one none ;;
            fd) phase_fd ;;
            loose) phase_socket loose loose ;;
            idmap) phase_idmap ;;
            multi) phase_multi ;;
            upgrade) phase_upgrade ;;
            service) phase_service ;;
            crash) phase_crash ;;
            *) echo "Bail out! unknown phase $phase"; exit 1 ;;
        esac
    done
    echo "1..$tap_n"
    [[ $tap_failed -eq 0 ]]
}

main "$@"
