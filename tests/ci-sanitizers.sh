#!/bin/bash
# Sanitizer builds for CI.  Usage: tests/ci-sanitizers.sh [asan|tsan|fuzz|all]
#
#   asan  _build/asan: CFLAGS=-fsanitize=address,undefined, full make check
#         (SAN_E2E=0 leaves out tests/e2e/run-e2e.sh, which boots QEMU
#         guests and is slow under ASan);
#   tsan  _build/tsan: -fsanitize=thread, the threading-relevant tests
#         (the lane scheduler stress, integration tests, stress tests in
#         their short form, 200 clients);
#   fuzz  _build/fuzz: clang --enable-fuzzing, each libFuzzer target for
#         FUZZ_SECONDS (default 30) after replaying the seed corpus.
# Every process (daemons spawned by tests included) writes its sanitizer
# reports to _build/<kind>/sanitizer-reports/ (log_path); the script fails
# if make check fails or if any report was written, and prints a summary.
# If the source tree is configured in place (config.status), a clean copy is
# built instead (_build/src), since automake refuses VPATH builds then.
set -u

kind=${1:-all}
src=$(cd "$(dirname "$0")/.." && pwd)
build=${SAN_BUILDDIR:-$src/_build}
jobs=${SAN_JOBS:-$(nproc)}
summary=()
status=0

prepare_srcdir() {
    srcdir=$src
    if [[ -f $src/config.status ]]; then
        srcdir=$build/src
        mkdir -p "$srcdir"
        (cd "$src" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) |
            tar -C "$srcdir" -xpf -
    fi
    if [[ ! -x $srcdir/configure || $srcdir/configure -ot $srcdir/configure.ac ||
          ! -f $srcdir/Makefile.in ]]; then
        (cd "$srcdir" && autoreconf -fi) || return 1
    fi
}

# run_kind NAME CFLAGS TESTS-OVERRIDE
run_kind() {
    local name=$1 cflags=$2 tests=$3 dir=$build/$1 reports rc
    reports=$dir/sanitizer-reports
    mkdir -p "$dir"
    rm -rf "$reports"
    mkdir -p "$reports"
    echo "== $name: configure and build in $dir"
    if ! (cd "$dir" && "$srcdir/configure" CFLAGS="$cflags" LDFLAGS="$cflags" >configure.log 2>&1 &&
          make -j"$jobs" >build.log 2>&1 && make -j"$jobs" check TESTS= >>build.log 2>&1); then
        echo "$name: build failed, see $dir/build.log"
        tail -20 "$dir/build.log"
        summary+=("$name: BUILD FAILED")
        status=1
        return
    fi
    echo "== $name: make check"
    (
        cd "$dir" || exit 1
        export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:exitcode=23:abort_on_error=0:fast_unwind_on_malloc=0"
        export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
        export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=0:exitcode=66:second_deadlock_stack=1"
        export STRESS_CONNS=${STRESS_CONNS:-$([[ $name == tsan ]] && echo 200 || echo 1000)}
        export STRESS_LATENCY_MS=${STRESS_LATENCY_MS:-20000}
        export STRESS_RSS_MB=${STRESS_RSS_MB:-1024}
        # Lane threads run as other uids (non-dumpable process, no
        # CAP_SYS_PTRACE): LeakSanitizer cannot suspend them at exit and
        # reports what only they reference (see tests/fuzz/FINDINGS.md F3).
        export LSAN_OPTIONS="suppressions=$srcdir/tests/stress/lsan.supp:print_suppressions=0"
        # GSlice recycles GList and GQueue nodes through per-thread
        # magazines the sanitizers cannot see: a node freed on one thread
        # and reused on another looks like a race (TSan) or hides a
        # use-after-free (ASan).  Plain malloc for every glib allocation.
        export G_SLICE=always-malloc
        if [[ -n $tests ]]; then
            make -j"$jobs" check TESTS="$tests"
        else
            make -j"$jobs" check
        fi
    ) >"$dir/check.log" 2>&1
    rc=$?
    local nreports nempty
    # An empty file is a report its process never wrote: test-crash SIGKILLs
    # serving processes (and the supervisor their whole group), which can land
    # while one opens its exit report.  Listed, not counted: there is nothing
    # in it to look at.
    nreports=$(find "$reports" -type f -size +0 | wc -l)
    nempty=$(find "$reports" -type f -size 0 | wc -l)
    if [[ $nempty -ne 0 ]]; then
        echo "$name: $nempty empty report file(s) (a process killed while it opened one):"
        find "$reports" -type f -size 0
    fi
    local results
    results=$(grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' "$dir/check.log" | tr -d '#' | tr '\n' ' ')
    if [[ $rc -ne 0 || $nreports -ne 0 ]]; then
        status=1
        summary+=("$name: FAILED (make check exit $rc, $nreports sanitizer report files) $results")
        grep -E '^(FAIL|ERROR)' "$dir/check.log" | head -20
        for f in $(find "$reports" -type f -size +0 | head -5); do
            echo "---- $f"
            head -40 "$f"
        done
    else
        summary+=("$name: OK, 0 sanitizer reports; $results")
    fi
}

prepare_srcdir || { echo "cannot prepare the source tree"; exit 1; }

if [[ $kind == asan || $kind == all ]]; then
    asan_tests=
    if [[ ${SAN_E2E:-1} == 0 ]]; then
        asan_tests="tests/unit/test-lanes tests/integration/test-ops tests/integration/test-conn tests/integration/test-security tests/integration/test-lifecycle tests/integration/test-diff tests/stress/test-malformed tests/stress/test-stress tests/stress/test-escape"
    fi
    run_kind asan "-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1" "$asan_tests"
fi
if [[ $kind == tsan || $kind == all ]]; then
    run_kind tsan "-fsanitize=thread -g -O1" \
        "tests/unit/test-lanes tests/integration/test-conn tests/integration/test-ops tests/integration/test-lifecycle tests/integration/test-upgrade tests/stress/test-malformed tests/stress/test-stress tests/stress/test-escape tests/isolation/test-hangfs tests/isolation/test-lease tests/isolation/test-fds tests/isolation/test-fair"
fi

if [[ $kind == fuzz || $kind == all ]]; then
    dir=$build/fuzz
    mkdir -p "$dir"
    echo "== fuzz: configure and build in $dir"
    if (cd "$dir" && "$srcdir/configure" CC=clang --enable-fuzzing >configure.log 2>&1 &&
        make -j"$jobs" tests/fuzz/fuzz-proto tests/fuzz/fuzz-conn tests/fuzz/fuzz-ops \
            >build.log 2>&1); then
        echo "== fuzz: ${FUZZ_SECONDS:-30} s per target"
        (cd "$dir" && TOP_SRCDIR=$srcdir TOP_BUILDDIR=$dir \
            bash "$srcdir/tests/fuzz/run-fuzz.sh" "${FUZZ_SECONDS:-30}") >"$dir/fuzz.log" 2>&1
        rc=$?
        grep -E '^(ok|not ok)' "$dir/fuzz.log"
        if [[ $rc -ne 0 ]] || grep -q '^not ok' "$dir/fuzz.log"; then
            status=1
            summary+=("fuzz: FAILED, see $dir/fuzz.log")
        else
            summary+=("fuzz: OK, $(grep -c '^ok' "$dir/fuzz.log") targets")
        fi
    else
        echo "fuzz: build failed, see $dir/build.log"
        tail -20 "$dir/build.log"
        summary+=("fuzz: BUILD FAILED")
        status=1
    fi
fi

echo "== sanitizer summary"
for line in "${summary[@]}"; do
    echo "  $line"
done
exit $status
