# tests/isolation: one guest never hurts another (issue 8, DESIGN.md
# "Isolation").  One GTest program per attack; each runs a victim on another
# connection of the attacked export and on a second export, and asserts the
# promise: every victim reply correct, none dropped, worst latency < 1 s,
# the daemon alive, its fds back to their count once the attacker left, its
# threads bounded.  Header comments say which finding each covers and how it
# failed on a404559.  noisy-bench measures the same attacks (make bench-noisy).
EXTRA_DIST += tests/isolation/.gitignore
check_LIBRARIES += tests/isolation/libisolation.a
tests_isolation_libisolation_a_SOURCES = \
	tests/isolation/iso.c tests/isolation/iso.h \
	tests/isolation/victim.c tests/isolation/victim.h \
	tests/isolation/attacks.c tests/isolation/attacks.h
tests_isolation_libisolation_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_isolation_libisolation_a_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)

check_LIBRARIES += tests/isolation/libisotest.a
tests_isolation_libisotest_a_SOURCES = tests/isolation/iso-test.c tests/isolation/iso-test.h
tests_isolation_libisotest_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib \
	-I$(top_srcdir)/tests/integration
tests_isolation_libisotest_a_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)

VI_TESTS = \
	tests/isolation/test-lanes \
	tests/isolation/test-lease \
	tests/isolation/test-fds \
	tests/isolation/test-limits \
	tests/isolation/test-peers \
	tests/isolation/test-memory \
	tests/isolation/test-fair \
	tests/isolation/test-hangfs \
	tests/isolation/test-garbage \
	tests/isolation/test-logflood
check_PROGRAMS += $(VI_TESTS)
TESTS += $(VI_TESTS)

VI_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib -I$(top_srcdir)/tests/integration
VI_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
VI_LDADD = tests/isolation/libisotest.a tests/isolation/libisolation.a \
	tests/integration/libharness.a tests/lib/libpclient.a $(GLIB_LIBS) -lpthread

tests_isolation_test_lanes_SOURCES = tests/isolation/test-lanes.c
tests_isolation_test_lanes_CPPFLAGS = $(VI_CPPFLAGS)
tests_isolation_test_lanes_CFLAGS = $(VI_CFLAGS)
tests_isolation_test_lanes_LDADD = $(VI_LDADD)

tests_isolation_test_lease_SOURCES = tests/isolation/test-lease.c
tests_isolation_test_lease_CPPFLAGS = $(VI_CPPFLAGS)
tests_isolation_test_lease_CFLAGS = $(VI_CFLAGS)
tests_isolation_test_lease_LDADD = $(VI_LDADD)

tests_isolation_test_fds_SOURCES = tests/isolation/test-fds.c
tests_isolation_test_fds_CPPFLAGS = $(VI_CPPFLAGS)
tests_isolation_test_fds_CFLAGS = $(VI_CFLAGS)
tests_isolation_test_fds_LDADD = $(VI_LDADD)

tests_isolation_test_limits_SOURCES = tests/isolation/test-limits.c
tests_isolation_test_limits_CPPFLAGS = $(VI_CPPFLAGS)
tests_isolation_test_limits_CFLAGS = $(VI_CFLAGS)
tests_isolation_test_limits_LDADD = $(VI_LDADD)

tests_isolation_test_peers_SOURCES = tests/isolation/test-peers.c
tests_isolation_test_peers_CPPFLAGS = $(VI_CPPFLAGS)
tests_isolation_test_peers_CFLAGS = $(VI_CFLAGS)
tests_isolation_test_peers_LDADD = $(VI_LDADD)

tests_isolation_test_memory_SOURCES = tests/isolation/test-memory.c
tests_isolation_test_memory_CPPFLAGS = $(VI_CPPFLAGS)
tests_isolation_test_memory_CFLAGS = $(VI_CFLAGS)
tests_isolation_test_memory_LDADD = $(VI_LDADD)

tests_isolation_test_fair_SOURCES = tests/isolation/test-fair.c
tests_isolation_test_fair_CPPFLAGS = $(VI_CPPFLAGS)
tests_isolation_test_fair_CFLAGS = $(VI_CFLAGS)
tests_isolation_test_fair_LDADD = $(VI_LDADD)

tests_isolation_test_hangfs_SOURCES = tests/isolation/test-hangfs.c
tests_isolation_test_hangfs_CPPFLAGS = $(VI_CPPFLAGS)
tests_isolation_test_hangfs_CFLAGS = $(VI_CFLAGS)
tests_isolation_test_hangfs_LDADD = $(VI_LDADD)

tests_isolation_test_garbage_SOURCES = tests/isolation/test-garbage.c
tests_isolation_test_garbage_CPPFLAGS = $(VI_CPPFLAGS)
tests_isolation_test_garbage_CFLAGS = $(VI_CFLAGS)
tests_isolation_test_garbage_LDADD = $(VI_LDADD)

tests_isolation_test_logflood_SOURCES = tests/isolation/test-logflood.c
tests_isolation_test_logflood_CPPFLAGS = $(VI_CPPFLAGS)
tests_isolation_test_logflood_CFLAGS = $(VI_CFLAGS)
tests_isolation_test_logflood_LDADD = $(VI_LDADD)

# The hung filesystem (needs libfuse3-dev; without it test-hangfs skips and
# noisy-bench leaves out its row).  Built with `make`, as noisy-bench uses it.
if HAVE_FUSE3
noinst_PROGRAMS += tests/isolation/hangfs
tests_isolation_hangfs_SOURCES = tests/isolation/hangfs.c
tests_isolation_hangfs_CFLAGS = $(AM_CFLAGS) $(FUSE3_CFLAGS)
tests_isolation_hangfs_LDADD = $(FUSE3_LIBS)
endif

# The noisy-neighbour table: victim latency with no attack and under each.
noinst_PROGRAMS += tests/isolation/noisy-bench
tests_isolation_noisy_bench_SOURCES = tests/isolation/noisy-bench.c
tests_isolation_noisy_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_isolation_noisy_bench_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_isolation_noisy_bench_LDADD = tests/isolation/libisolation.a tests/lib/libpclient.a \
	$(GLIB_LIBS) -lpthread
