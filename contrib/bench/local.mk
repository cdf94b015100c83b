# contrib/bench: the load generator (vp-bench), the machine's-limit server
# (minserver) and the drivers behind `make bench` / `make bench-quick`.
# See doc/performance.md.
noinst_PROGRAMS += contrib/bench/vp-bench contrib/bench/minserver

contrib_bench_vp_bench_SOURCES = contrib/bench/vp-bench.c
contrib_bench_vp_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib
contrib_bench_vp_bench_LDADD = tests/lib/libpclient.a -lpthread -lm

contrib_bench_minserver_SOURCES = contrib/bench/minserver.c

# The sandbox's cost per system call (issue 11, doc/performance.md).
noinst_PROGRAMS += contrib/bench/sandbox-cost
contrib_bench_sandbox_cost_SOURCES = contrib/bench/sandbox-cost.c
contrib_bench_sandbox_cost_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src
contrib_bench_sandbox_cost_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
contrib_bench_sandbox_cost_LDADD = $(VP_LIBS)

EXTRA_DIST += contrib/bench/run-bench.sh contrib/bench/plot.gp contrib/bench/summary-md.awk

BENCH_ENV = \
	VP_BENCH=$(abs_top_builddir)/contrib/bench/vp-bench \
	VIRTFS_PROXYD=$(abs_top_builddir)/src/virtfs-proxyd \
	MINSERVER=$(abs_top_builddir)/contrib/bench/minserver \
	REFERENCE_HELPER=$(REFERENCE_HELPER) \
	PLOT_GP=$(abs_top_srcdir)/contrib/bench/plot.gp \
	RESULTS_DIR=$(abs_top_builddir)/results

BENCH_DEPS = contrib/bench/vp-bench contrib/bench/minserver src/virtfs-proxyd

# The issue-12 tables (about 8 minutes), then the noisy-neighbour table:
# each of the 20 request types at 1 client, ours/ref alternating, pinned to
# one CPU and to two, 3 x 1 s; server CPU per request at 64 clients for
# lstat, open and mixed, ours/ref/min, 3 x 3 s.  Measures only.
bench: $(BENCH_DEPS)
	$(BENCH_ENV) $(SHELL) $(srcdir)/contrib/bench/run-bench.sh full
	$(MAKE) $(AM_MAKEFLAGS) bench-noisy

# The issue-5 matrix: clients {1,4,16,64,256} x {lstat,open,create,mixed},
# ours/ref/min alternating, median of 3 (about 13 minutes), and its plot.
bench-matrix: $(BENCH_DEPS)
	$(BENCH_ENV) $(SHELL) $(srcdir)/contrib/bench/run-bench.sh matrix

# CI-sized (~30 s): every per-type mix and the issue-5 mixes briefly; fails
# only on errors or wrong replies, never on timing.
bench-quick: $(BENCH_DEPS)
	$(BENCH_ENV) $(SHELL) $(srcdir)/contrib/bench/run-bench.sh quick

# The noisy-neighbour table (issue 8): victim latency p50/p99/max with no
# attack and under each attack of tests/isolation/attacks.c, one fresh
# daemon per row, NOISY_DURATION seconds each (about 1 minute in all).
# Needs root (and /dev/fuse for the hung-fs row).  Measures only.
NOISY_DURATION = 3
NOISY_DEPS = tests/isolation/noisy-bench src/virtfs-proxyd
if HAVE_FUSE3
NOISY_DEPS += tests/isolation/hangfs
endif
bench-noisy: $(NOISY_DEPS)
	@mkdir -p $(abs_top_builddir)/results
	@out=$(abs_top_builddir)/results/noisy-$$(date +%Y%m%d-%H%M%S); \
	VIRTFS_PROXYD=$(abs_top_builddir)/src/virtfs-proxyd \
	    $(abs_top_builddir)/tests/isolation/noisy-bench --duration $(NOISY_DURATION) \
	    --markdown --csv $$out.csv | tee $$out.md; \
	echo "results in $$out.md and $$out.csv"

.PHONY: bench bench-matrix bench-quick bench-noisy
