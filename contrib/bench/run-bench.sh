#!/bin/sh
# run-bench.sh full|quick - drive vp-bench over the benchmark matrix.
#
# Environment (set by `make bench`): VP_BENCH, VIRTFS_PROXYD, MINSERVER,
# REFERENCE_HELPER, PLOT_GP, RESULTS_DIR.  Optional: BENCH_DURATION (s per
# run), BENCH_REPEAT, BENCH_CLIENTS, BENCH_MIXES, BENCH_IDLE, BENCH_ARGS.
#
# Exit status is non-zero only when a server gave a wrong or missing reply
# (or could not be run); timings are reported, never judged.
set -eu

mode=${1:-full}
: "${VP_BENCH:?}" "${VIRTFS_PROXYD:?}" "${MINSERVER:?}" "${RESULTS_DIR:?}"
REFERENCE_HELPER=${REFERENCE_HELPER:-/usr/lib/qemu/virtfs-proxy-helper}

servers=ours,ref,min
if [ ! -x "$REFERENCE_HELPER" ]; then
    echo "run-bench: no reference helper ($REFERENCE_HELPER): measuring ours and min only" >&2
    servers=ours,min
fi

case $mode in
full)
    clients=${BENCH_CLIENTS:-1,4,16,64,256}
    mixes=${BENCH_MIXES:-lstat,open,create,mixed}
    duration=${BENCH_DURATION:-3}
    repeat=${BENCH_REPEAT:-3}
    idle=${BENCH_IDLE:-10000}
    out=$RESULTS_DIR/bench-$(date +%Y%m%d-%H%M%S)
    ;;
quick)
    clients=${BENCH_CLIENTS:-1,16}
    mixes=${BENCH_MIXES:-lstat,open,create,mixed}
    duration=${BENCH_DURATION:-0.4}
    repeat=${BENCH_REPEAT:-1}
    idle=${BENCH_IDLE:-1000}
    out=$RESULTS_DIR/bench-quick-$(date +%Y%m%d-%H%M%S)
    ;;
*)
    echo "usage: run-bench.sh full|quick" >&2
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
    echo "matrix: servers=$servers clients=$clients mixes=$mixes duration=${duration}s repeat=$repeat"
} >"$out/env.txt"
cat "$out/env.txt"

status=0
"$VP_BENCH" --daemon "$VIRTFS_PROXYD" --minserver "$MINSERVER" --reference "$REFERENCE_HELPER" \
    --servers "$servers" --mix "$mixes" --clients "$clients" \
    --duration "$duration" --warmup 0.3 --repeat "$repeat" \
    --workdir "$work" --csv "$out/runs.csv" --summary "$out/summary.csv" \
    ${BENCH_ARGS:-} | tee "$out/table.txt" || status=1

"$VP_BENCH" --daemon "$VIRTFS_PROXYD" --servers ours --idle "$idle" \
    --workdir "$work" --csv "$out/idle.csv" | tee -a "$out/table.txt" || status=1

if [ -s "$out/summary.csv" ]; then
    awk -f "$(dirname "$0")/summary-md.awk" "$out/summary.csv" >"$out/table.md"
fi
if [ -n "${PLOT_GP:-}" ] && command -v gnuplot >/dev/null 2>&1 && [ -s "$out/summary.csv" ]; then
    gnuplot -e "summary='$out/summary.csv'; output='$out/bench.png'" "$PLOT_GP" \
        || echo "run-bench: gnuplot failed (no plot)" >&2
else
    echo "run-bench: gnuplot not found; no plot (apt-get install gnuplot-nox)" >&2
fi
echo "results in $out"
exit $status
