#!/bin/sh
# run-bench.sh full|quick|matrix - drive vp-bench.
#
#   full    the issue-12 tables (`make bench`, ~8 min): every request type's
#           own ops/s at 1 client, ours and ref, client and servers pinned
#           to one CPU and to two; then server CPU per request at 64
#           clients for lstat, open and mixed, ours/ref/min.  table.md.
#   quick   CI-sized (`make bench-quick`, ~30 s): every per-type mix and the
#           issue-5 mixes briefly, to prove their reply checks.
#   matrix  the issue-5 matrix (`make bench-matrix`, ~13 min): clients
#           {1,4,16,64,256} x {lstat,open,create,mixed} x {ours,ref,min}.
#
# Environment (set by `make bench`): VP_BENCH, VIRTFS_PROXYD, MINSERVER,
# REFERENCE_HELPER, PLOT_GP, RESULTS_DIR.  Optional: BENCH_DURATION (s per
# run), BENCH_REPEAT, BENCH_CLIENTS, BENCH_MIXES, BENCH_IDLE, BENCH_ARGS;
# for full: BENCH_TYPE_DURATION, BENCH_TYPE_MIXES, BENCH_PINS.
#
# Exit status is non-zero only when a server gave a wrong or missing reply
# (or could not be run); timings are reported, never judged.
set -eu

mode=${1:-full}
: "${VP_BENCH:?}" "${VIRTFS_PROXYD:?}" "${MINSERVER:?}" "${RESULTS_DIR:?}"
REFERENCE_HELPER=${REFERENCE_HELPER:-/usr/lib/qemu/virtfs-proxy-helper}

servers=ours,ref,min
type_servers=ours,ref
if [ ! -x "$REFERENCE_HELPER" ]; then
    echo "run-bench: no reference helper ($REFERENCE_HELPER): measuring ours and min only" >&2
    servers=ours,min
    type_servers=ours
fi

case $mode in
full)
    # per-type cells: BENCH_TYPE_*; the 64-client CPU table: BENCH_*
    type_mixes=${BENCH_TYPE_MIXES:-all}
    type_duration=${BENCH_TYPE_DURATION:-1}
    pins=${BENCH_PINS:-same,split}
    clients=${BENCH_CLIENTS:-64}
    mixes=${BENCH_MIXES:-lstat,open,mixed}
    duration=${BENCH_DURATION:-3}
    repeat=${BENCH_REPEAT:-3}
    idle=${BENCH_IDLE:-10000}
    out=$RESULTS_DIR/bench-$(date +%Y%m%d-%H%M%S)
    ;;
quick)
    type_mixes=${BENCH_TYPE_MIXES:-types}
    type_duration=${BENCH_TYPE_DURATION:-0.2}
    pins=${BENCH_PINS:-same}
    clients=${BENCH_CLIENTS:-1,16}
    mixes=${BENCH_MIXES:-lstat,open,create,mixed}
    duration=${BENCH_DURATION:-0.4}
    repeat=${BENCH_REPEAT:-1}
    idle=${BENCH_IDLE:-1000}
    out=$RESULTS_DIR/bench-quick-$(date +%Y%m%d-%H%M%S)
    ;;
matrix)
    clients=${BENCH_CLIENTS:-1,4,16,64,256}
    mixes=${BENCH_MIXES:-lstat,open,create,mixed}
    duration=${BENCH_DURATION:-3}
    repeat=${BENCH_REPEAT:-3}
    idle=${BENCH_IDLE:-10000}
    out=$RESULTS_DIR/bench-matrix-$(date +%Y%m%d-%H%M%S)
    ;;
*)
    echo "usage: run-bench.sh full|quick|matrix" >&2
    exit 2
    ;;
esac

mkdir -p "$out"
work=$(mktemp -d /tmp/vp-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

{
    echo "date: $(date -Is)"
    echo "host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "daemon: $VIRTFS_PROXYD ($(cd "$(dirname "$VIRTFS_PROXYD")" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo "reference: $REFERENCE_HELPER"
    if [ "$mode" != matrix ]; then
        echo "per-type: servers=$type_servers clients=1 mixes=$type_mixes pins=$pins duration=${type_duration}s repeat=$repeat"
    fi
    echo "matrix: servers=$servers clients=$clients mixes=$mixes duration=${duration}s repeat=$repeat"
    echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/env.txt"
cat "$out/env.txt"
if [ "$mode" != matrix ]; then
    sed 's/^/    /' "$out/env.txt" >"$out/table.md"
fi

# vp-bench "$@" | tee, with vp-bench's exit status (a pipeline's status is
# its last command's, and sh has no pipefail).
tee_status() {
    rc=0
    { "$@" || echo $? >"$work/rc"; } | tee -a "$out/table.txt"
    if [ -s "$work/rc" ]; then
        rc=$(cat "$work/rc")
        rm -f "$work/rc"
    fi
    return "$rc"
}

bench() {
    tee_status "$VP_BENCH" --daemon "$VIRTFS_PROXYD" --minserver "$MINSERVER" \
        --reference "$REFERENCE_HELPER" --workdir "$work" --csv "$out/runs.csv" \
        --summary "$out/summary.csv" "$@" ${BENCH_ARGS:-}
}

status=0
if [ "$mode" != matrix ]; then
    # The per-type table: 1 client, one request in flight, like QEMU.
    bench --servers "$type_servers" --mix "$type_mixes" --clients 1 --pin "$pins" \
        --duration "$type_duration" --warmup 0.2 --repeat "$repeat" \
        --markdown "$out/table.md" || status=1
fi
if [ "$mode" = matrix ]; then
    set --
else
    set -- --markdown "$out/table.md" # the CPU-per-request table
fi
bench --servers "$servers" --mix "$mixes" --clients "$clients" \
    --duration "$duration" --warmup 0.3 --repeat "$repeat" "$@" || status=1

# The daemon serves as many connections as its descriptor limit carries,
# 17 descriptors each (virtfs-proxyd(8)); where the hard limit is lower than
# the count asks for and cannot be raised, check as many as it allows.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$idle" -gt $((hard / 17 - 64)) ]; then
    echo "run-bench: descriptor limit $hard carries $((hard / 17 - 64)) idle connections, not $idle" \
        | tee -a "$out/env.txt" >&2
    idle=$((hard / 17 - 64))
fi
tee_status "$VP_BENCH" --daemon "$VIRTFS_PROXYD" --servers ours --idle "$idle" \
    --workdir "$work" --csv "$out/idle.csv" || status=1

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/env.txt"
if [ "$mode" != matrix ]; then
    echo "    load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/table.md"
fi
if [ "$mode" = matrix ] && [ -s "$out/summary.csv" ]; then
    awk -f "$(dirname "$0")/summary-md.awk" "$out/summary.csv" >"$out/table.md"
    if [ -n "${PLOT_GP:-}" ] && command -v gnuplot >/dev/null 2>&1; then
        gnuplot -e "summary='$out/summary.csv'; output='$out/bench.png'" "$PLOT_GP" \
            || echo "run-bench: gnuplot failed (no plot)" >&2
    else
        echo "run-bench: gnuplot not found; no plot (apt-get install gnuplot-nox)" >&2
    fi
fi
if [ -s "$out/table.md" ]; then
    echo
    cat "$out/table.md"
fi
echo "results in $out"
exit $status
