#!/usr/bin/env bash
# Installs what virtfs-proxyd needs, builds it, and starts it serving a
# default export; then prints the QEMU options that attach a guest to it.
#
#   EXPORT=/srv/virtfs-proxyd/share SOCKET=/run/virtfs-proxyd/share.sock \
#       bash contrib/quickstart.sh
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
export_dir=${EXPORT:-/srv/virtfs-proxyd/share}
socket=${SOCKET:-/run/virtfs-proxyd/share.sock}

if [ "$(id -u)" -ne 0 ]; then
    echo "quickstart: run as root (the daemon serves guests of every uid)" >&2
    exit 1
fi

bash "$top/contrib/install-deps.sh"
cd "$top"
if [ ! -x src/virtfs-proxyd ]; then
    autoreconf -fi >/dev/null
    ./configure -q
fi
make -s -j"$(nproc)" src/virtfs-proxyd

mkdir -p "$export_dir" "$(dirname "$socket")"
# A QEMU that runs unprivileged is usually in group kvm: let that group in.
group=root
getent group kvm >/dev/null && group=kvm

if "$top/src/virtfs-proxyd" -p "$export_dir" -s "$socket" -u root -g "$group"; then
    echo "virtfs-proxyd serves $export_dir on $socket (logs: journalctl -t virtfs-proxyd)"
else
    echo "quickstart: virtfs-proxyd did not start (see the message above)" >&2
    exit 1
fi

cat <<TXT

Attach a guest (add to your qemu-system-x86_64 command line):

    -fsdev proxy,id=share,socket=$socket \\
    -device virtio-9p-pci,fsdev=share,mount_tag=share

and mount it inside the guest:

    mount -t 9p -o trans=virtio,version=9p2000.L share /mnt

Any number of guests can use the same socket path.  Stop the daemon with
    pkill -TERM -f 'virtfs-proxyd -p $export_dir'
TXT
