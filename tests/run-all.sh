#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
# installs the packages, builds from a clean tree with warnings as errors,
# runs `make check` (unit, integration, differential against QEMU's own
# helper, real QEMU guests), the sanitizer builds, a short fuzzing pass, a
# short stress run and a quick benchmark, then prints one summary line.
#
# QUICK=1 skips the sanitizer, fuzz and benchmark stages.  Long forms are
# separate: make stress, make fuzz (configure --enable-fuzzing CC=clang),
# make bench.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
passed=0
failed=0
failures=()

say() { printf '\n=== %s\n' "$*"; }

# Adds the counts of an automake test-suite.log to the totals.
count_log() {
    local log=$1 stage=$2 pass fail
    if [ ! -f "$log" ]; then
        failed=$((failed + 1))
        failures+=("$stage: no test-suite.log")
        return
    fi
    pass=$(awk '/^# (PASS|XFAIL|SKIP):/ {n += $3} END {print n + 0}' "$log")
    fail=$(awk '/^# (FAIL|XPASS|ERROR):/ {n += $3} END {print n + 0}' "$log")
    passed=$((passed + pass))
    failed=$((failed + fail))
    [ "$fail" -eq 0 ] || failures+=("$stage: $fail failed (see $log)")
}

# Runs one command as a single check.
stage() {
    local name=$1
    shift
    say "$name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$name")
    fi
}

say "dependencies"
bash contrib/install-deps.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }

say "build"
# --enable-test-hooks: the tests that kill a process at an exact point need
# them; a default build (README's first command) never has them.
if ! { autoreconf -fi >/dev/null && ./configure -q --enable-werror --enable-test-hooks &&
       make -j"$(nproc)"; }; then
    echo "build failed"
    echo "tests: 0 passed, 1 failed"
    exit 1
fi

say "make check"
make -j"$(nproc)" check >make-check.out 2>&1
tail -n 25 make-check.out
count_log test-suite.log "make check"

# README's first command, on a private export and socket: it must start a
# daemon that serves the socket, and SIGTERM must remove it again.
quickstart_smoke() {
    local dir sock pid
    dir=$(mktemp -d /tmp/vp-quickstart.XXXXXX)
    sock=$dir/share.sock
    EXPORT=$dir/share SOCKET=$sock bash contrib/quickstart.sh >"$dir/out" 2>&1 || {
        cat "$dir/out"; rm -rf "$dir"; return 1; }
    grep -q -- "-fsdev proxy,id=share,socket=$sock" "$dir/out" &&
        [ -S "$sock" ] &&
        pid=$(pgrep -o -f -- "virtfs-proxyd -p $dir/share -s $sock") || {
        cat "$dir/out"; rm -rf "$dir"; return 1; }
    kill -TERM "$pid"
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    ! kill -0 "$pid" 2>/dev/null && [ ! -e "$sock" ]
    local rc=$?
    rm -rf "$dir"
    return $rc
}
stage "README command 1: contrib/quickstart.sh starts a daemon, prints the QEMU options" \
    quickstart_smoke

if [ "${QUICK:-0}" != 1 ]; then
    # Each sanitizer stage counts its tests, plus one check: no report at all.
    stage "ASan+UBSan: whole make check, no sanitizer report" bash tests/ci-sanitizers.sh asan
    count_log _build/asan/test-suite.log "ASan+UBSan make check"
    stage "TSan: threading tests, no sanitizer report" bash tests/ci-sanitizers.sh tsan
    count_log _build/tsan/test-suite.log "TSan"
    stage "fuzz: ${FUZZ_SECONDS:-30} s per libFuzzer target" bash tests/ci-sanitizers.sh fuzz
    stage "benchmark (quick)" make -s bench-quick
    stage "make distcheck: the tarball builds, tests, installs and uninstalls" \
        bash tests/ci-distcheck.sh
fi

say "summary"
for f in "${failures[@]}"; do
    echo "FAILED: $f"
done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
