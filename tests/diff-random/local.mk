# tests/diff-random: randomized differential test against QEMU's reference
# helper (issue 13).  `make check` runs the fixed-seed short form (seeds 1-3
# x 150 requests: ~1.5 s, ~20 s of CPU under CI's ASan options), `make
# diff-short` seeds 1-3 x 500, `make diff-long` the long form (DIFF_SEEDS,
# DIFF_STEPS, DIFF_REPORT).  It skips without root or without the reference
# helper.
check_PROGRAMS += tests/diff-random/diff-random
TESTS += tests/diff-random/diff-random
EXTRA_DIST += tests/diff-random/FINDINGS.md

tests_diff_random_diff_random_SOURCES = \
	tests/diff-random/dr.h \
	tests/diff-random/diff-random.c \
	tests/diff-random/gen.c \
	tests/diff-random/known.c \
	tests/diff-random/req.c \
	tests/diff-random/session.c \
	tests/diff-random/tree.c
tests_diff_random_diff_random_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_diff_random_diff_random_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_diff_random_diff_random_LDADD = tests/lib/libpclient.a $(GLIB_LIBS)

# At least 100,000 requests over many seeds; the report lists every class
# of difference with a minimal reproduction.
DIFF_LONG_SEEDS = 1001-1050
DIFF_LONG_STEPS = 2000
diff-long: tests/diff-random/diff-random src/virtfs-proxyd
	$(AM_V_at)$(TESTS_ENVIRONMENT) \
	DIFF_SEEDS=$${DIFF_SEEDS:-$(DIFF_LONG_SEEDS)} \
	DIFF_STEPS=$${DIFF_STEPS:-$(DIFF_LONG_STEPS)} \
	DIFF_MINIMIZE=$${DIFF_MINIMIZE:-1} \
	DIFF_REPORT=$${DIFF_REPORT:-$(abs_top_builddir)/diff-long-report.md} \
	tests/diff-random/diff-random
diff-short: tests/diff-random/diff-random src/virtfs-proxyd
	$(AM_V_at)$(TESTS_ENVIRONMENT) DIFF_STEPS=$${DIFF_STEPS:-500} tests/diff-random/diff-random
.PHONY: diff-long diff-short
