# contrib/bench: the load generator (vp-bench), the machine's-limit server
# (minserver) and the drivers behind `make bench` / `make bench-quick`.
# See doc/performance.md.
noinst_PROGRAMS += contrib/bench/vp-bench contrib/bench/minserver

contrib_bench_vp_bench_SOURCES = contrib/bench/vp-bench.c
contrib_bench_vp_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib
contrib_bench_vp_bench_LDADD = tests/lib/libpclient.a -lpthread -lm

contrib_bench_minserver_SOURCES = contrib/bench/minserver.c

EXTRA_DIST += contrib/bench/run-bench.sh contrib/bench/plot.gp contrib/bench/summary-md.awk

BENCH_ENV = \
	VP_BENCH=$(abs_top_builddir)/contrib/bench/vp-bench \
	VIRTFS_PROXYD=$(abs_top_builddir)/src/virtfs-proxyd \
	MINSERVER=$(abs_top_builddir)/contrib/bench/minserver \
	REFERENCE_HELPER=$(REFERENCE_HELPER) \
	PLOT_GP=$(abs_top_srcdir)/contrib/bench/plot.gp \
	RESULTS_DIR=$(abs_top_builddir)/results

BENCH_DEPS = contrib/bench/vp-bench contrib/bench/minserver src/virtfs-proxyd

# The full matrix: clients {1,4,16,64,256} x {lstat,open,create,mixed},
# ours/ref/min alternating, median of 3 (about 15 minutes).  Measures only.
bench: $(BENCH_DEPS)
	$(BENCH_ENV) $(SHELL) $(srcdir)/contrib/bench/run-bench.sh full

# CI-sized (< 60 s): fails only on errors or wrong replies, never on timing.
bench-quick: $(BENCH_DEPS)
	$(BENCH_ENV) $(SHELL) $(srcdir)/contrib/bench/run-bench.sh quick

.PHONY: bench bench-quick
