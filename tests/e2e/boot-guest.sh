#!/bin/bash
# Boots one e2e guest in the foreground and returns QEMU's exit status
# (124 when it was killed for running past --timeout).
#
#   boot-guest.sh --image DIR --log FILE [--accel tcg|kvm] [--timeout SEC]
#                 [--append "KEY=VALUE ..."]
#                 [--socket PATH | --fd-server BIN --export DIR [--reap-log FILE]]
#                 [--socket2 PATH] [--name NAME] [--user UID:GID] [--server-arg ARG]...
#
# --socket PATH      -fsdev proxy,socket=PATH (a server must be listening).
# --fd-server BIN    -fsdev proxy,sock_fd=4, and BIN -n -p DIR -f 3 is started
#                    as this guest's private server on the other end of a socket
#                    pair (made by re-executing under DIR/e2e-socketpair 3 4).
# --reap-log FILE    start that server under DIR/e2e-reaper FILE, which records
#                    the exit status of the server and of every process that
#                    takes over from it in a live upgrade.
# --socket2 PATH     a second 9p device, mount tag share2, on socket PATH.
# --name NAME        -name guest=NAME,debug-threads=on, as libvirt names a VM.
# --user UID:GID     QEMU runs as UID:GID without supplementary groups (as
#                    libvirt runs it), not as root; the console FILE is made
#                    theirs first, and kernel and initramfs must be readable.
# --server-arg ARG   one more argument for the --fd-server (repeatable).
# Without --socket or --fd-server, the guest has no 9p device (used for probe
# boots).
#
# The serial console goes to FILE, QEMU's stderr to FILE.qemu, a private
# server's stderr to FILE.server and its pid (its reaper's with --reap-log)
# to FILE.server.pid.
set -euo pipefail

args=("$@")
image='' log='' accel=tcg timeout=120 append='' socket='' fd_server='' export_dir=''
reap_log='' socket2='' name='' user=''
reap_log='' socket2=''
server_args=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --image) image=$2 ;;
        --log) log=$2 ;;
        --accel) accel=$2 ;;
        --timeout) timeout=$2 ;;
        --append) append=$2 ;;
        --socket) socket=$2 ;;
        --fd-server) fd_server=$2 ;;
        --export) export_dir=$2 ;;
        --reap-log) reap_log=$2 ;;
        --socket2) socket2=$2 ;;
        --name) name=$2 ;;
        --user) user=$2 ;;
        --server-arg) server_args+=("$2") ;;
        *) echo "boot-guest.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
[[ -n $image && -n $log ]] || { echo "boot-guest.sh: --image and --log are required" >&2; exit 2; }

fsdev=()
if [[ -n $socket ]]; then
    fsdev=(-fsdev "proxy,id=fs0,socket=$socket")
elif [[ -n $fd_server ]]; then
    if [[ -z ${E2E_SOCKETPAIR_FDS:-} ]]; then
        E2E_SOCKETPAIR_FDS=3,4 exec "$image/e2e-socketpair" 3 4 "$0" "${args[@]}"
    fi
    reaper=()
    [[ -z $reap_log ]] || reaper=("$image/e2e-reaper" "$reap_log")
    "${reaper[@]}" "$fd_server" -n -p "$export_dir" -f 3 "${server_args[@]}" 4<&- \
        2>"$log.server" &
    echo $! >"$log.server.pid"
    exec 3<&-
    fsdev=(-fsdev "proxy,id=fs0,sock_fd=4")
fi
if [[ ${#fsdev[@]} -gt 0 ]]; then
    fsdev+=(-device "virtio-9p-pci,fsdev=fs0,mount_tag=share")
fi
if [[ -n $socket2 ]]; then
    fsdev+=(-fsdev "proxy,id=fs1,socket=$socket2"
            -device "virtio-9p-pci,fsdev=fs1,mount_tag=share2")
fi
extra=() runas=()
[[ -z $name ]] || extra+=(-name "guest=$name,debug-threads=on")
if [[ -n $user ]]; then
    : >"$log"
    chown "$user" "$log"
    runas=(setpriv --reuid="${user%%:*}" --regid="${user#*:}" --clear-groups)
fi

# timeout forwards SIGTERM to QEMU, so killing this process's pid (after the
# exec, timeout's) stops the guest. Its child is QEMU (setpriv execs it).
exec timeout -k 5 "$timeout" \
    "${runas[@]}" qemu-system-x86_64 -accel "$accel" -M pc -m 256 -smp 1 \
    -nodefaults -no-user-config -display none -no-reboot \
    -serial "file:$log" \
    -kernel "$image/kernel" -initrd "$image/initramfs.img" \
    -append "console=ttyS0 quiet panic=-1 $append" \
    "${fsdev[@]}" "${extra[@]}" 2>"$log.qemu"
