#!/bin/bash
# test-install.sh - `make install` into a DESTDIR, as an operator would use
# it: the exact file list, the units checked by systemd-analyze verify, and
# the installed daemon started from the installed unit's ExecStart line
# under its CapabilityBoundingSet= and NoNewPrivileges= (Type=notify
# readiness, a real client, the installed virtfs-proxyctl, SIGTERM).  The
# installed programs and configuration are made to appear at their real
# paths in a private mount namespace, so nothing of the machine's changes.
# TAP output.
set -u
: "${TOP_BUILDDIR:?}" "${VP_SBINDIR:?}" "${VP_MANDIR:?}" "${VP_DOCDIR:?}" "${VP_SYSCONFDIR:?}"
: "${VP_PROBE:?}"
unitdir=${VP_UNITDIR:-}

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

work=$(mktemp -d /tmp/vp-install.XXXXXX)
made=()
cleanup() {
    # Only the empty directories made as mount points below.
    for d in "${made[@]}"; do
        find "$d" -depth -type d -empty -delete 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
dest=$work/dest
echo "1..7"

# 1. make install DESTDIR=...
if make -s -C "$TOP_BUILDDIR" install DESTDIR="$dest" >"$work/install.log" 2>&1; then
    ok "make install DESTDIR"
else
    not_ok "make install DESTDIR"
    sed 's/^/# /' "$work/install.log"
    exit 1
fi

# 2. exactly these files
{
    echo "$VP_SBINDIR/virtfs-proxyd"
    echo "$VP_SBINDIR/virtfs-proxyctl"
    echo "$VP_MANDIR/man5/virtfs-proxyd.conf.5"
    echo "$VP_MANDIR/man8/virtfs-proxyd.8"
    echo "$VP_MANDIR/man8/virtfs-proxyctl.8"
    echo "$VP_DOCDIR/examples/virtfs-proxyd.conf.example"
    if [ -n "$unitdir" ]; then
        for u in virtfs-proxyd.service virtfs-proxyd@.service virtfs-proxyd.socket \
            virtfs-proxyd-export@.socket; do
            echo "$unitdir/$u"
        done
    fi
} | sort >"$work/want"
(cd "$dest" && find . -type f -o -type l) | sed 's|^\.||' | sort >"$work/got"
if diff -u "$work/want" "$work/got" >"$work/diff"; then
    ok "installed files: $(wc -l <"$work/got") as expected"
else
    not_ok "installed files differ from the expected list"
    sed 's/^/# /' "$work/diff"
fi

# 3. the shared unit names the installed daemon and configuration
service=$dest$unitdir/virtfs-proxyd.service
execstart=
bounds=
if [ -z "$unitdir" ]; then
    skip "no systemd unit directory configured"
else
    execstart=$(sed -n 's/^ExecStart=//p' "$service")
    # What systemd applies before it executes ExecStart, through setpriv.
    if command -v setpriv >/dev/null; then
        bounds="setpriv --bounding-set=-all"
        for c in $(sed -n 's/^CapabilityBoundingSet=//p' "$service" | tr '[:upper:]' '[:lower:]'); do
            bounds="$bounds,+${c#cap_}"
        done
        if grep -qx 'NoNewPrivileges=yes' "$service"; then bounds="$bounds --no-new-privs"; fi
    fi
    check "ExecStart= is '$execstart'" \
        [ "$execstart" = "$VP_SBINDIR/virtfs-proxyd --nodaemon -c $VP_SYSCONFDIR/virtfs-proxyd.conf" ]
fi

# Runs "$@" in a private mount namespace where the DESTDIR's programs are at
# their installed path and $work/etc is the configuration directory.
# Makes directory $1 if missing (a mount point), remembering the first
# missing one to remove it again.
mount_point() {
    local d=$1 top=
    while [ ! -d "$d" ]; do top=$d; d=$(dirname "$d"); done
    if [ -n "$top" ]; then
        mkdir -p "$1" && made+=("$top")
    fi
}

in_install() {
    mount_point "$VP_SBINDIR"
    mount_point "$VP_SYSCONFDIR"
    mkdir -p "$work/etc"
    unshare -m --propagation private bash -c '
        mount --bind "$1" "$2" && mount --bind "$3" "$4" || exit 99
        shift 4
        exec "$@"' bash "$dest$VP_SBINDIR" "$VP_SBINDIR" "$work/etc" "$VP_SYSCONFDIR" "$@"
}

namespaces=yes
if ! unshare -m --propagation private true 2>/dev/null; then
    namespaces=no
fi

# 4. systemd-analyze verify on the installed units
if [ -z "$unitdir" ]; then
    skip "no systemd unit directory configured"
elif ! command -v systemd-analyze >/dev/null; then
    skip "systemd-analyze is not installed (package systemd)"
elif [ $namespaces = no ]; then
    skip "no mount namespace here (unshare -m): the units' programs cannot be put in place"
else
    (cd "$dest$unitdir" && in_install systemd-analyze verify --man=no virtfs-proxyd.service \
        virtfs-proxyd.socket virtfs-proxyd-export@isos.socket virtfs-proxyd@share.service) \
        >"$work/verify.log" 2>&1
    rc=$?
    if [ $rc -eq 99 ]; then
        skip "cannot bind-mount here: systemd-analyze verify cannot run"
    elif [ $rc -eq 0 ] && [ ! -s "$work/verify.log" ]; then
        ok "systemd-analyze verify: 4 units, no complaint"
    else
        not_ok "systemd-analyze verify (status $rc)"
        sed 's/^/# /' "$work/verify.log"
    fi
fi

# 5-7. the daemon from ExecStart: ready, serving, controlled, stopped
if [ -z "$execstart" ] || [ $namespaces = no ]; then
    for t in 5 6 7; do skip "no unit or no mount namespace"; done
    exit $failed
fi
mkdir -p "$work/export" "$work/etc"
echo hello >"$work/export/hello"
cat >"$work/etc/virtfs-proxyd.conf" <<CONF
[daemon]
control-socket = $work/control.sock
[export share]
path = $work/export
socket = $work/share.sock
uid = root
gid = 0
CONF
cat >"$work/run.sh" <<'RUN'
# In the namespace: start ExecStart as systemd would (NOTIFY_SOCKET set),
# wait for READY=1, then use it.
work=$1 execstart=$2 probe=$3 sbindir=$4 bounds=$5
"$probe" ready "$work/notify" 10 >"$work/ready" &
rpid=$!
for _ in $(seq 100); do grep -q listening "$work/ready" 2>/dev/null && break; sleep 0.05; done
NOTIFY_SOCKET=$work/notify $bounds $execstart 2>"$work/daemon.log" &
dpid=$!
wait $rpid; ready=$?
echo "ready=$ready $(tail -1 "$work/ready")"
"$probe" lstat "$work/share.sock" /hello && echo "client=ok"
"$sbindir/virtfs-proxyctl" --control "$work/control.sock" status >"$work/status" && echo "ctl=ok"
kill -TERM $dpid
wait $dpid
echo "exit=$?"
RUN
in_install bash "$work/run.sh" "$work" "$execstart" "$VP_PROBE" "$VP_SBINDIR" "$bounds" \
    >"$work/run.out" 2>&1
sed 's/^/# /' "$work/run.out"
check "started from ExecStart, it says READY=1 on \$NOTIFY_SOCKET" \
    grep -q "^ready=0 READY=1 MAINPID=" "$work/run.out"
check "a client's lstat is answered, and the installed virtfs-proxyctl reads its status" \
    bash -c "grep -q '^client=ok' '$work/run.out' && grep -q '^ctl=ok' '$work/run.out' &&
             grep -q 'mode:           config $VP_SYSCONFDIR/virtfs-proxyd.conf' '$work/status'"
check "SIGTERM: exit 0, socket and control socket removed" \
    bash -c "grep -q '^exit=0' '$work/run.out' && [ ! -e '$work/share.sock' ] &&
             [ ! -e '$work/control.sock' ]"
if [ $failed -ne 0 ] && [ -f "$work/daemon.log" ]; then
    sed 's/^/# daemon: /' "$work/daemon.log"
fi
exit $failed
