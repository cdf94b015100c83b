#!/bin/bash
# Runs every libFuzzer target for SECONDS each and prints TAP.
#
#   tests/fuzz/run-fuzz.sh [SECONDS]     (default: $FUZZ_SECONDS, else 0)
#
# SECONDS=0 only replays the seed corpus and the saved corpus through each
# target (a regression test: what make check runs).  Otherwise each target
# fuzzes for SECONDS, growing tests/fuzz/work/TARGET/corpus in the build
# tree; crashes, leaks, timeouts and OOMs land in tests/fuzz/work/TARGET/
# (crash-*, leak-*, timeout-*, oom-*) and fail the target.  The targets need
# root: they run in a private, read-only mount namespace (fuzz-common.h).
#
# Environment: TOP_SRCDIR, TOP_BUILDDIR (set by make), FUZZ_TARGETS (subset,
# e.g. "proto ops"), FUZZ_JOBS (parallel targets, default: number of CPUs),
# FUZZ_ARGS (extra libFuzzer flags).
set -u

seconds=${1:-${FUZZ_SECONDS:-0}}
here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
builddir=${TOP_BUILDDIR:-$(pwd)}
targets=${FUZZ_TARGETS:-proto conn ops}
jobs=${FUZZ_JOBS:-$(nproc)}
work=$builddir/tests/fuzz/work
n=0
failed=0

set -- $targets
echo "1..$#"
if [[ $(id -u) -ne 0 ]]; then
    for t in $targets; do
        n=$((n + 1))
        echo "ok $n - fuzz-$t # SKIP needs root (private mount namespace)"
    done
    exit 0
fi

# Largest input: a whole frame plus the conn target's two control bytes,
# and room for a few frames.
max_len() {
    case $1 in
        proto) echo 65600 ;;
        *) echo 140000 ;;
    esac
}

run_one() {
    local t=$1 bin=$builddir/tests/fuzz/fuzz-$1 dir=$work/$1
    local -a args
    mkdir -p "$dir/corpus"
    rm -f "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*
    args=(-artifact_prefix="$dir/" -max_len="$(max_len "$t")" -timeout=30
          -rss_limit_mb=3072 -print_final_stats=1 -close_fd_mask=1)
    if [[ $seconds -eq 0 ]]; then
        args+=(-runs=0)
    else
        args+=(-max_total_time="$seconds")
    fi
    # shellcheck disable=SC2086
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
        "$bin" "${args[@]}" ${FUZZ_ARGS:-} "$dir/corpus" "$srcdir/tests/fuzz/corpus/$t" \
        >"$dir/fuzz.log" 2>&1
    echo $? >"$dir/status"
}

for t in $targets; do
    if [[ ! -x $builddir/tests/fuzz/fuzz-$t ]]; then
        continue
    fi
    run_one "$t" &
    while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do
        wait -n
    done
done
wait

for t in $targets; do
    n=$((n + 1))
    dir=$work/$t
    if [[ ! -x $builddir/tests/fuzz/fuzz-$t ]]; then
        echo "ok $n - fuzz-$t # SKIP not built (configure --enable-fuzzing CC=clang)"
        continue
    fi
    status=$(cat "$dir/status")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" | tail -1)
    last=$(grep -E '(DONE|INITED|pulse|NEW|REDUCE) ' "$dir/fuzz.log" | tail -1)
    cov=$(sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1 ft \2/p' <<<"$last")
    peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$dir/fuzz.log" | tail -1)
    artifacts=$(cd "$dir" && ls crash-* leak-* timeout-* oom-* 2>/dev/null | tr '\n' ' ')
    summary="fuzz-$t: ${execs:-?} executions in ${seconds}s, ${cov:-no coverage line}, peak RSS ${peak:-?} MB, corpus $(ls "$dir/corpus" | wc -l)"
    if [[ $status -eq 0 && -z $artifacts ]]; then
        echo "ok $n - $summary"
    else
        echo "not ok $n - $summary, exit $status ${artifacts:+artifacts: $artifacts}"
        grep -E -A25 'ERROR:|FUZZ ORACLE|runtime error|deadly signal' "$dir/fuzz.log" | head -60 | sed 's/^/# /'
        echo "# full log: $dir/fuzz.log"
        failed=1
    fi
done
exit $failed
