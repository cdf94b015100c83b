#!/bin/bash
# tests/ci-distcheck.sh - `make distcheck`, CI-sized: the tarball must hold
# everything needed to build, test, install and uninstall from a read-only
# source tree into a private prefix (units included).  The full test suite
# already runs in run-all.sh's "make check" stage; here the unit tests, the
# control-socket test and the install and activation tests run from the
# tarball's build.  Configures the tree first if it is not.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ ! -f Makefile ]; then
    autoreconf -fi >/dev/null
    ./configure -q --enable-werror
fi
tests="tests/unit/test-proto tests/unit/test-settings tests/unit/test-log \
tests/unit/test-tally tests/unit/test-listener tests/integration/test-control \
tests/system/test-install.sh tests/system/test-activation.sh"
make -j"$(nproc)" distcheck TESTS="$tests" >distcheck.log 2>&1 || {
    tail -n 60 distcheck.log
    exit 1
}
grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR):|archives ready for distribution' distcheck.log
