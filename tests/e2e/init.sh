#!/bin/sh
# /init of the e2e guest (busybox sh, PID 1). Loads the 9p modules, mounts
# the share and hands PID 1 over to the workload, which powers off when done.
# Kernel command line: e2e.dir=NAME (subdirectory of the share to work in),
# e2e.cache=none|loose|... (9p cache mode), e2e.mode=run|loop|probe,
# e2e.secs=N (loop: the longest it may run), e2e.share2=1 (loop: a second
# share, tag share2, is mounted on /mnt2 and also has a directory NAME),
# e2e.eio=1 (loop: an EIO is the server's crash, counted, not an error).
export PATH=/bin

fail() {
    echo "E2E-RESULT $1 FAIL $2"
    echo "E2E-DONE failed=1"
    poweroff -f
}

mount -t proc proc /proc
mount -t devtmpfs dev /dev
echo "E2E-TIME boot $(cut -d' ' -f1 /proc/uptime)"

dir='' cache=none mode=run secs=60 share2=0
# shellcheck disable=SC2013 # the command line is one line of words
for arg in $(cat /proc/cmdline); do
    case $arg in
        e2e.dir=*) dir=${arg#e2e.dir=} ;;
        e2e.cache=*) cache=${arg#e2e.cache=} ;;
        e2e.mode=*) mode=${arg#e2e.mode=} ;;
        e2e.secs=*) secs=${arg#e2e.secs=} ;;
        e2e.share2=*) share2=${arg#e2e.share2=} ;;
        e2e.eio=1) export E2E_EIO_OK=1 ;;
    esac
done

if [ "$mode" = probe ]; then
    echo "E2E-DONE failed=0"
    poweroff -f
fi

while read -r mod; do
    insmod "/lib/modules/$mod" || fail modules "insmod $mod"
done </lib/modules/load-order
mkdir -p /mnt
mount -t 9p -o "trans=virtio,version=9p2000.L,cache=$cache" share /mnt ||
    fail mount "mount -t 9p cache=$cache"
echo "E2E-RESULT mount PASS cache=$cache"
[ -d "/mnt/$dir" ] || fail chdir "no directory /mnt/$dir on the share"
if [ "$mode" = loop ]; then
    if [ "$share2" = 1 ]; then
        mkdir -p /mnt2
        mount -t 9p -o "trans=virtio,version=9p2000.L,cache=$cache" share2 /mnt2 ||
            fail mount2 "mount -t 9p share2 cache=$cache"
        [ -d "/mnt2/$dir" ] || fail chdir2 "no directory /mnt2/$dir on share2"
        exec /e2e-work loop /mnt "/mnt/$dir" "$secs" /mnt2 "/mnt2/$dir"
    fi
    exec /e2e-work loop /mnt "/mnt/$dir" "$secs"
fi
exec /e2e-work guest /mnt "/mnt/$dir"
