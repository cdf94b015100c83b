# Test fragments: one per kind of test, each owning its directory.
include $(srcdir)/tests/unit/local.mk
include $(srcdir)/tests/lib/local.mk
include $(srcdir)/tests/integration/local.mk
include $(srcdir)/tests/e2e/local.mk
include $(srcdir)/tests/fuzz/local.mk
include $(srcdir)/tests/stress/local.mk
include $(srcdir)/tests/diff-random/local.mk
include $(srcdir)/tests/isolation/local.mk
include $(srcdir)/tests/system/local.mk

# The CI drivers (run-all.sh is the README's test command).
EXTRA_DIST += tests/run-all.sh tests/ci-distcheck.sh
